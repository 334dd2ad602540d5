"""Preemption (SIGTERM), one writer per workdir, and a log that reads as if never stopped."""

import signal

import pytest

from tnjax.training import checkpoint as checkpoint_lib
from tnjax import errors
from tnjax.training import run_lock
from tnjax.training import trainer

import run_helpers as h

pytestmark = pytest.mark.slow


def test_sigterm_saves_exits_75_and_the_rerun_equals_an_uninterrupted_run(tmp_path):
  full, stopped = tmp_path / "full", tmp_path / "stopped"
  h.reference_run(full)
  # Checkpoints only at the end of each 32-step epoch: a SIGTERM mid-epoch must save anyway.
  process = h.start(h.train_command(stopped))
  h.wait_for(lambda: h.logged_step(stopped) >= 40, what="step 40")
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=120)
  assert process.returncode == errors.EXIT_PREEMPTED, err[-2000:]
  saved = checkpoint_lib.Checkpointer(stopped / "checkpoints").latest_step()
  assert 40 <= saved < h.TOTAL_STEPS  # usually mid-epoch: checkpoints are otherwise per epoch
  assert err.strip().splitlines()[-1] == (
    f"tnjax: preempted: checkpoint saved at step {saved}; rerun the same command to resume"
  )
  assert not (stopped / "result.json").exists()

  resumed = h.run(h.train_command(stopped))
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert f"at step {saved}." in resumed.stdout
  h.assert_same_params(h.flat_params(full / "checkpoints"), h.flat_params(stopped / "checkpoints"))
  # The log holds each step once, in order, as the uninterrupted run's does. Only the
  # first training record after the stop differs if the stop fell inside its 4-step
  # window: it averages the steps run after the resume.
  cut = -(-saved // 4) * 4 if saved % 4 else None
  keys = lambda log: [(r["step"], "train_loss" in r) for r in log]
  same = lambda log: [r for r in log if not (r["step"] == cut and "train_loss" in r)]
  assert keys(h.log_without_times(stopped)) == keys(h.log_without_times(full))
  assert same(h.log_without_times(stopped)) == same(h.log_without_times(full))


def test_a_second_trainer_on_a_held_workdir_refuses_in_one_line(tmp_path):
  workdir = tmp_path / "run"
  long = ["--config.num_epochs=40"]  # outlives the second trainer's start-up
  first = h.start(h.train_command(workdir, *long))
  try:
    h.wait_for(lambda: h.logged_step(workdir) >= 4, what="the first trainer to start")
    holder = run_lock.holder(workdir)
    assert holder is not None and f":{first.pid}:" in holder
    with pytest.raises(errors.WorkdirBusy, match=f"in use by .*:{first.pid}:"):
      trainer.train(h.small_config(), str(workdir))  # refused before loading data
    second = h.run(h.train_command(workdir, *long))
    assert second.returncode == errors.EXIT_WORKDIR_BUSY
    assert len(second.stderr.strip().splitlines()) == 1
    assert "is in use by" in second.stderr and f":{first.pid}:" in second.stderr
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  # flock dies with its holder: no stale lock after a SIGKILL.
  assert run_lock.holder(workdir) is None
  resumed = h.run(h.train_command(workdir, *long))
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  # One training record per log step and one eval record per epoch, in order, none repeated.
  keys = [(r["step"], "test_loss" in r) for r in h.log_without_times(workdir)]
  assert keys == sorted(keys) and len(keys) == len(set(keys)) == 40 * 32 // 4 + 40
