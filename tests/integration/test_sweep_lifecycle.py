"""A sweep's trainers die with it, and two sweeps over one workdir never train a point twice."""

import os
import signal

import pytest

from tnjax.training import checkpoint as checkpoint_lib
from tnjax import errors
from tnjax.training import run_lock
from tnjax import config_lib, sweep
from tnjax.training import run_files

import run_helpers as h

pytestmark = pytest.mark.slow

# Two long points (40 epochs of 32 steps), checkpoints at epoch ends (and on SIGTERM).
_SWEEP_CONFIG = """
from tnjax.configs import tt_mnist

def get_config(arg=None):
  c = tt_mnist.get_config("synthetic,runlocal")
  c.num_epochs, c.log_every_steps = 40, 4  # long: both tests stop it early
  c.data.max_train_examples, c.data.synthetic.num_train = 0, 512
  return c

def sweep():
  return [{"model.layers.hidden.ranks": r} for r in (2, 4)]
"""


def _sweep(tmp_path, *extra):
  config = tmp_path / "long_sweep.py"
  config.write_text(_SWEEP_CONFIG)
  workdir = tmp_path / "sweep"
  point = workdir / sweep.point_name(
    0, sweep.sweep_points(config_lib.load_module(str(config))[0])[0]
  )
  return h.cli("tnjax.sweep", f"--config={config}", f"--workdir={workdir}", *extra), point


def _pid_of_holder(point) -> int:
  return int(run_lock.holder(point).split(":")[1])


def _gone(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  return False


def test_a_killed_sweep_takes_its_trainer_down_with_a_saved_checkpoint(tmp_path):
  command, point = _sweep(tmp_path, "--points=0")
  parent = h.start(command)
  h.wait_for(lambda: h.logged_step(point) >= 40, what="the point to train")
  child = _pid_of_holder(point)
  parent.kill()  # SIGKILL: the sweep gets no chance to clean up; the kernel tells the child
  parent.wait()
  h.wait_for(lambda: _gone(child), timeout=60, what="the orphaned trainer to exit")
  saved = checkpoint_lib.Checkpointer(point / "checkpoints").latest_step()
  assert saved is not None and saved >= 40  # saved on the signal
  assert "tnjax: preempted: checkpoint saved at step" in (point / "train.log").read_text()
  assert run_files.status(point) == "partial"


def test_a_second_sweep_skips_the_point_the_first_is_training(tmp_path):
  command, point = _sweep(tmp_path, "--points=0")
  first = h.start(command)
  try:
    h.wait_for(lambda: h.logged_step(point) >= 8, what="the first sweep's point to train")
    second = h.run(command, timeout=120)
    assert f"[ running] {point}" in second.stdout
    assert second.returncode == 1  # not done, and nothing was started
    assert "point 0" not in second.stdout
  finally:
    first.send_signal(signal.SIGTERM)  # passed on to the trainer, which saves
    out, _ = first.communicate(timeout=120)
  assert first.returncode == errors.EXIT_PREEMPTED, out[-2000:]
  assert "stopped (saved; rerun to resume)" in out
  steps = [r["step"] for r in h.log_without_times(point) if "train_loss" in r]
  assert steps == sorted(set(steps))  # one trainer wrote this log
