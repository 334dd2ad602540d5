"""Each sweep point runs in a child process: its devices, its log (train.log, also on gs://),
and the signals the sweep passes on (a preempted or Ctrl-C'd sweep stops every point, saved)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import warnings

from tnjax import errors, fileio
from tnjax.training import run_files


def device_env(slot: int, parallel: int, platform: str | None = None) -> dict:
  """Environment that gives the point in `slot` (0..parallel-1) its own accelerator: one TPU
  chip or one GPU each, so `--parallel N` on an N-chip host runs N small points at once.
  Nothing with parallel 1 or on a CPU host."""
  if parallel <= 1:
    return {}
  platform = platform or _platform()
  if platform == "tpu":
    return {
      "TPU_VISIBLE_CHIPS": str(slot),
      "TPU_CHIPS_PER_PROCESS_BOUNDS": "1,1,1",
      "TPU_PROCESS_BOUNDS": "1,1,1",
      "TPU_PROCESS_PORT": str(8476 + slot),
      "TPU_MESH_CONTROLLER_PORT": str(8476 + slot),
    }
  if platform == "gpu":
    return {"CUDA_VISIBLE_DEVICES": str(slot)}
  return {}


def _platform() -> str:
  """The accelerator kind of this host, without starting JAX in the sweep process."""
  if os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0"):
    return "tpu"
  if os.path.exists("/dev/nvidia0"):
    return "gpu"
  return "cpu"


_PR_SET_PDEATHSIG = 1


def _die_with_parent():
  """Runs in the child before exec: SIGTERM it when the sweep process dies, however it dies."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
  except OSError:  # not Linux: the sweep's SIGTERM handler still passes signals on
    pass


class _Children:
  """The running point processes, so a SIGTERM to the sweep reaches each of them."""

  def __init__(self):
    self.processes, self.stopping, self._lock = set(), False, threading.Lock()
    self.signal = None

  def start(self, command, log, env=None):
    with self._lock:
      if self.stopping:
        return None
      process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
        env=None if env is None else {**os.environ, **env},
      )
      self.processes.add(process)
      return process

  def stop_all(self, signum=signal.SIGTERM, frame=None):
    del frame
    with self._lock:
      if self.stopping:  # a repeated signal: the points are already saving
        return
      self.stopping, self.signal = True, signum
      for process in self.processes:
        if process.poll() is None:
          process.send_signal(signum)


CHILDREN = _Children()
# preexec_fn makes Popen fork, and JAX warns at every fork of a process that imported it;
# the child only sets its death signal and execs a fresh Python, so nothing is at risk.
warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)


# Exits that are no failure: done, stopped or signalled (a rerun resumes), busy or taken
# over by another process, diverged.
_NOT_FAILURES = (
  0,
  errors.EXIT_PREEMPTED,
  errors.EXIT_INTERRUPTED,
  errors.EXIT_WORKDIR_BUSY,
  errors.EXIT_LOCK_LOST,
  errors.EXIT_DIVERGED,
  -signal.SIGINT,
  -signal.SIGTERM,
)


def launch(config_path: str, point_dir, index: int, overrides: dict, env=None) -> int:
  """Runs one point in a child process; its output goes to POINT_DIR/train.log."""
  point_dir = fileio.workdir_path(point_dir)
  command = [
    sys.executable,
    "-m",
    "tnjax.sweep",
    f"--config={config_path}",
    f"--workdir={point_dir}",
    f"--run_point={index}",
    *(f"--config.{key}={value}" for key, value in overrides.items()),
  ]
  remote = fileio.is_remote(point_dir)
  log = point_dir / run_files.TRAIN_LOG
  # gs:// objects cannot be appended to: log locally, then add the lines to train.log at the end.
  if remote:
    handle, log_path = tempfile.mkstemp(suffix=".log")
    os.close(handle)
  else:
    log_path = os.fspath(log)
  with open(log_path, "a") as log_file:
    process = CHILDREN.start(command, log_file, env)
    code = errors.EXIT_PREEMPTED if process is None else process.wait()
    if process is not None:
      CHILDREN.processes.discard(process)
  with open(log_path) as f:
    output = f.read()
  if remote:
    previous = log.read_text() if log.exists() else ""
    fileio.write_text(log, previous + output)
    os.remove(log_path)
  if code == errors.EXIT_USER_ERROR:  # the child's one line says what to fix
    reason = next(
      (line for line in reversed(output.splitlines()) if line.startswith("tnjax: error:")),
      f"exit {code}; see {run_files.TRAIN_LOG}",
    )
    fileio.write_json(point_dir / run_files.FAILED, {"message": reason})
  elif code not in _NOT_FAILURES and run_files.status(point_dir) == "new":
    # A crash (a traceback, an out-of-memory kill) before anything was saved: --status
    # shows it failed and why, instead of a point that seems never to have run.
    last = (output.strip().splitlines() or ["no output"])[-1]
    reason = f"crashed (exit {code}; {run_files.TRAIN_LOG} ends: {last[:160]})"
    fileio.write_json(point_dir / run_files.FAILED, {"message": reason})
  return code
