"""Data parallelism on a mesh of 8 fake CPU devices, and a 2-process CPU run.

Both need JAX started with special settings, so they run in subprocesses.
"""

import json
import os
import random
import socket
import subprocess
import sys

import pytest

from tnjax import sharding

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELPERS = os.path.join(REPO, "tests", "integration", "helpers")
pytestmark = pytest.mark.slow


def _env(**extra):
  env = dict(
    os.environ, WANDB_MODE="disabled", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu", **extra
  )
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  return env


def test_meshes_1x8_8x1_2x4_equal_the_single_device_run(tmp_path):
  result = subprocess.run(
    [sys.executable, os.path.join(HELPERS, "mesh_runs.py"), str(tmp_path)],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=500,
    env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"),
  )
  assert result.returncode == 0, result.stderr[-3000:]
  runs = json.loads(result.stdout.split("RESULTS ", 1)[1])
  assert set(runs) == {"data8", "model8", "data2_model4"}
  for name, run in runs.items():
    assert run["param_diff"] < 1e-5, name
    assert run["loss_diff"] < 1e-5 and run["test_loss_diff"] < 1e-5, name
    assert run["compilations"] == 1, name  # the sharded state keeps its layout step to step
  assert runs["data2_model4"]["model_sharded"]  # rank-4 TT cores split over 'model'


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _jax_env():
  port = _free_port()
  return lambda i: {
    "JAX_NUM_PROCESSES": "2",
    "JAX_PROCESS_ID": str(i),
    "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
  }


def _slurm_job_id() -> int:
  """A job id whose coordinator port (JAX's SLURM rule: 61440 + id % 4096) is free here."""
  for offset in random.Random().sample(range(4096), 4096):
    with socket.socket() as s:
      try:
        s.bind(("localhost", 61440 + offset))
      except OSError:
        continue
    return 4096 * 7 + offset
  pytest.fail("no free port in 61440-65535 for the fake SLURM job's coordinator")


def _slurm_env(job_id):
  """What `srun --ntasks=2` on one node sets for each task (the variables JAX reads)."""
  return lambda i: {
    "SLURM_JOB_ID": str(job_id),
    "SLURM_STEP_NODELIST": "localhost",
    "SLURM_STEP_NUM_NODES": "1",
    "SLURM_NTASKS": "2",
    "SLURM_PROCID": str(i),
    "SLURM_LOCALID": str(i),
  }


def _two_processes(workdir, epochs, env_of=None):
  env_of = env_of or _jax_env()
  procs = [
    subprocess.Popen(
      [sys.executable, os.path.join(HELPERS, "two_process_run.py"), str(workdir), str(epochs)],
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
      env=_env(**env_of(i)),
    )
    for i in range(2)
  ]
  outputs = [p.communicate(timeout=300)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  return outputs


def test_two_cpu_processes_train_checkpoint_and_resume_together(tmp_path):
  workdir = tmp_path / "run"
  outputs = _two_processes(workdir, epochs=2)
  losses = [out.split("test_loss ")[1].split()[0] for out in outputs]
  assert "PROCESS 0 of 2 devices 2" in outputs[0] and "PROCESS 1 of 2 devices 2" in outputs[1]
  assert losses[0] == losses[1]  # one global computation
  assert sorted(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit())[-1] == 16
  outputs = _two_processes(workdir, epochs=3)
  assert "Resumed from" in outputs[0] and "at step 16" in outputs[0]
  assert sorted(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit())[-1] == 24


def test_a_two_task_slurm_step_starts_through_jax_own_detection(tmp_path):
  env_of = _slurm_env(_slurm_job_id())
  assert all("JAX_NUM_PROCESSES" not in env_of(i) for i in range(2))
  outputs = _two_processes(tmp_path / "run", epochs=1, env_of=env_of)
  assert "PROCESS 0 of 2 devices 2" in outputs[0] and "PROCESS 1 of 2 devices 2" in outputs[1]
  losses = [out.split("test_loss ")[1].split()[0] for out in outputs]
  assert losses[0] == losses[1]


def test_one_process_under_a_launcher_starts_nothing(monkeypatch):
  for key in ("JAX_NUM_PROCESSES", "TPU_WORKER_HOSTNAMES", "OMPI_MCA_orte_hnp_uri"):
    monkeypatch.delenv(key, raising=False)
  monkeypatch.setenv("SLURM_STEP_NODELIST", "node1")
  monkeypatch.setenv("SLURM_NTASKS", "1")  # a one-task job: nothing to coordinate
  assert sharding.cluster_launcher() is None and not sharding.maybe_initialize_distributed()
  monkeypatch.setenv("SLURM_NTASKS", "4")
  assert sharding.cluster_launcher() == "SLURM"
  monkeypatch.delenv("SLURM_STEP_NODELIST")
  monkeypatch.setenv("OMPI_MCA_orte_hnp_uri", "1531576320.0;tcp://10.96.0.1:34911")
  monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
  assert sharding.cluster_launcher() == "Open MPI"


def test_mesh_config_errors_name_the_fix():
  with pytest.raises(ValueError, match="asks for 3 devices, but there are 1"):
    sharding.make_mesh({"data": 3, "model": 1})
  with pytest.raises(ValueError, match=r"unknown axes \['pipe'\]"):
    sharding.make_mesh({"data": 1, "pipe": 2})
  assert sharding.make_mesh({"data": 1, "model": 1}) is None
  with pytest.raises(ValueError, match="config.batch_size=3 does not divide over the mesh's 2"):
    sharding.check_batch(3, _MeshShape(data=2))


class _MeshShape:
  """Stands in for a 2-device mesh: check_batch reads only the axis sizes."""

  def __init__(self, data):
    self.shape = {"data": data, "model": 1}
