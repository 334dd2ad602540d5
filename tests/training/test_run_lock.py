"""One writer: a local holder whose lock file disappears (the workdir deleted under a
running trainer) stops at once, so a second trainer never writes beside it."""

import shutil
import threading

import pytest

from tnjax import errors
from tnjax.training import run_lock


def test_a_second_trainer_on_a_held_workdir_is_refused(tmp_path):
  first = run_lock.WorkdirLock(tmp_path / "run").acquire()
  try:
    with pytest.raises(errors.WorkdirBusy, match=r"in use by .*:\d+:"):
      run_lock.WorkdirLock(tmp_path / "run").acquire()
  finally:
    first.release()
  run_lock.WorkdirLock(tmp_path / "run").acquire().release()  # free again, and retakable


@pytest.mark.parametrize("remove", ["workdir", "lock_file"])
def test_a_holder_whose_lock_file_disappears_stops_and_writes_nothing(tmp_path, remove):
  workdir = tmp_path / "run"
  lost = threading.Event()
  messages = []
  holder = run_lock.WorkdirLock(workdir, on_lost=lambda m: (messages.append(m), lost.set()))
  holder.acquire()
  try:
    holder.check()  # held: no error
    if remove == "workdir":
      shutil.rmtree(workdir)
    else:
      (workdir / run_lock.LOCAL_LOCK).unlink()
    with pytest.raises(errors.LockLost, match=r"\.lock was deleted or replaced"):
      holder.check()  # what the trainer calls before every write
    assert lost.wait(5.0), "the watcher did not notice within 5 s"
    assert "stopped without writing more" in messages[0]
    # A second trainer now takes a fresh lock; the first one is the one that stopped.
    second = run_lock.WorkdirLock(workdir).acquire()
    second.check()
    second.release()
  finally:
    holder.release()


def test_a_released_lock_stops_its_watcher(tmp_path):
  holder = run_lock.WorkdirLock(tmp_path / "run", on_lost=lambda m: pytest.fail(m)).acquire()
  holder.release()
  shutil.rmtree(tmp_path / "run")  # after release: nobody is told anything
  assert holder._thread is None  # pylint: disable=protected-access
