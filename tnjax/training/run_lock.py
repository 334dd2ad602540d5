"""One writer per run: an exclusive lock on the workdir, held by process 0 for the run's life.

Local workdirs use flock(2) on WORKDIR/.lock: the kernel drops the lock when the
holder dies, however it dies, so a stale lock cannot exist. On gs:// there is no
such primitive, so the lock is an object (WORKDIR/lock.json) naming its holder and
refreshed by a heartbeat thread, every write conditional on the object's generation
(as GCS-backed lock services do): taking a free lock is create-only
(ifGenerationMatch=0), taking over a stale one (heartbeat older than
`stale_seconds`, or its process gone on this host) replaces exactly the stale
generation, and a heartbeat replaces only the generation the holder wrote last. Of
hosts racing for one point exactly one write succeeds. A holder whose heartbeat finds
the lock gone or taken (it was paused past the stale time and another host took
over) stops at once, writing nothing more: one line, exit code 5 (`on_lost`); the
trainer also checks the lock before every checkpoint and log write. A local holder
whose .lock file is deleted or replaced (the workdir deleted under a running trainer)
stops the same way: flock follows the open file, not the path, so a second trainer
could otherwise lock a fresh .lock beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid

from tnjax import errors
from tnjax import fileio

LOCAL_LOCK = ".lock"
REMOTE_LOCK = "lock.json"


def _identity() -> dict:
  return {
    "holder": f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
    "host": socket.gethostname(),
    "pid": os.getpid(),
    "since": time.time(),
  }


def _alive(info: dict | None) -> bool:
  """A remote lock is live if its heartbeat is fresh and, on this host, its process exists."""
  if not info or time.time() - info.get("heartbeat", 0) >= info.get("stale_seconds", 120):
    return False
  if info.get("host") == socket.gethostname():
    try:
      os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
      return False  # killed without releasing: no need to wait for the heartbeat to age
    except PermissionError:
      pass
  return True


def holder(workdir) -> str | None:
  """Who holds the workdir's lock now ('host:pid:id'), or None if nobody does."""
  workdir = fileio.workdir_path(workdir)
  if fileio.is_remote(workdir):
    info = _read_remote(workdir / REMOTE_LOCK)
    return info["holder"] if _alive(info) else None
  path = workdir / LOCAL_LOCK
  if not path.exists():
    return None
  with open(path, "a+") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      return f.read().strip() or "another process"
    fcntl.flock(f, fcntl.LOCK_UN)
  return None


def _read_remote(path):
  try:
    return _parse(fileio.read_with_generation(path)[0])
  except OSError:
    return None


def _parse(text: str | None) -> dict | None:
  """A lock record, or None for no lock, a released one or a damaged one."""
  try:
    record = json.loads(text) if text else None
  except json.JSONDecodeError:
    return None
  return record if isinstance(record, dict) and "holder" in record else None


def _stop_the_process(message: str) -> None:
  """A program that lost its lock ends now: no checkpoint, no log line more, exit 5."""
  print(f"tnjax: error: {message}", file=sys.stderr, flush=True)
  os._exit(errors.EXIT_LOCK_LOST)  # pylint: disable=protected-access


class WorkdirLock:
  """`with WorkdirLock(workdir):` runs with the lock held, or raises WorkdirBusy."""

  def __init__(self, workdir, *, stale_seconds: float = 120.0, on_lost=None):
    self.workdir = fileio.workdir_path(workdir)
    self.stale_seconds = stale_seconds
    self.identity = _identity()
    self.on_lost = on_lost or _stop_the_process
    self.lost = threading.Event()
    self._file = None
    self._stop = threading.Event()
    self._write_lock = threading.Lock()
    self._thread = None
    self._generation = None

  def _busy(self, name: str) -> errors.WorkdirBusy:
    return errors.WorkdirBusy(
      f"workdir {self.workdir} is in use by {name}; wait for it to "
      "finish or stop it, or choose another --workdir."
    )

  def acquire(self) -> "WorkdirLock":
    self._stop = threading.Event()  # a released lock may be taken again
    self.workdir.mkdir(parents=True, exist_ok=True)
    if fileio.is_remote(self.workdir):
      self._acquire_remote()
    else:
      self._acquire_local()
    return self

  def _acquire_local(self):
    f = open(self.workdir / LOCAL_LOCK, "a+")
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      name = f.read().strip() or "another process"
      f.close()
      raise self._busy(name) from None
    f.seek(0)
    f.truncate()
    f.write(self.identity["holder"] + "\n")
    f.flush()
    self._file = f
    # flock holds the open file, not the path: if the workdir (or .lock) is deleted, a
    # second trainer would lock a new file beside this one. So watch the path.
    self._thread = threading.Thread(target=self._watch_local, daemon=True, name="tnjax-lock")
    self._thread.start()

  def _local_lock_is_ours(self) -> bool:
    try:
      return os.stat(self.workdir / LOCAL_LOCK).st_ino == os.fstat(self._file.fileno()).st_ino
    except (OSError, ValueError):  # the path is gone (or the file was closed by release)
      return False

  def _local_lost_message(self) -> str:
    return (
      f"the lock file {self.workdir / LOCAL_LOCK} was deleted or replaced while this run held "
      "it (was the workdir deleted?); stopped without writing more, so that no second "
      "trainer writes beside this one. Rerun the command to continue from the last checkpoint."
    )

  def _watch_local(self):
    while not self._stop.wait(1.0):
      with self._write_lock:
        if self._stop.is_set() or self._file is None:
          return
        if not self._local_lock_is_ours():
          self.lost.set()
          self.on_lost(self._local_lost_message())
          return

  def _record(self) -> dict:
    return {**self.identity, "heartbeat": time.time(), "stale_seconds": self.stale_seconds}

  def _acquire_remote(self):
    path = self.workdir / REMOTE_LOCK
    text, generation = fileio.read_with_generation(path)
    current = _parse(text)
    if _alive(current):
      raise self._busy(current["holder"])
    # Free (generation 0: create-only) or stale (replace exactly that generation).
    written = fileio.write_if_generation(path, json.dumps(self._record()), generation or 0)
    if written is None:  # another host's conditional write won the race
      winner = _parse(fileio.read_with_generation(path)[0]) or {"holder": "another host"}
      raise self._busy(winner["holder"])
    self._generation = written
    self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="tnjax-lock")
    self._thread.start()

  def check(self) -> None:
    """Raises errors.LockLost if the lock is no longer this holder's (call it before writing
    into the workdir): the remote object replaced, or the local lock file deleted."""
    if self._file is not None:
      if self.lost.is_set() or not self._local_lock_is_ours():
        self.lost.set()
        raise errors.LockLost(self._local_lost_message())
      return
    if self._generation is None:
      return
    if self.lost.is_set() or fileio.read_with_generation(self.workdir / REMOTE_LOCK)[1] != (
      self._generation
    ):
      self.lost.set()
      raise errors.LockLost(self._lost_message())

  def _lost_message(self) -> str:
    return (
      f"the lock on {self.workdir} was taken over by another host (this one was paused "
      f"past stale_seconds={self.stale_seconds:g}); stopped without writing more. The "
      "new holder continues the run."
    )

  def _heartbeat(self):
    path = self.workdir / REMOTE_LOCK
    while not self._stop.wait(self.stale_seconds / 4):
      with self._write_lock:
        if self._stop.is_set():
          return
        written = fileio.write_if_generation(path, json.dumps(self._record()), self._generation)
        if written is None:
          self.lost.set()
          self.on_lost(self._lost_message())
          return
        self._generation = written

  def release(self) -> None:
    if self._file is not None:
      self._stop.set()
      with self._write_lock:  # the watcher is not mid-check
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
      if self._thread is not None:
        self._thread.join()
        self._thread = None
    if self._thread is not None:
      self._stop.set()
      self._thread.join()  # a heartbeat in flight finishes first: the generation is final
      self._thread = None
      path = self.workdir / REMOTE_LOCK
      if not self.lost.is_set():  # release only our own generation, never a successor's
        fileio.delete_if_generation(path, self._generation)
      self._generation = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


@contextlib.contextmanager
def held_for_training(workdir, is_main: bool):
  """Process 0 holds the workdir's lock; every process learns whether it got it."""
  import jax  # pylint: disable=g-import-not-at-top  # a lock reader (run_files) needs no JAX
  import numpy as np  # pylint: disable=g-import-not-at-top

  lock, busy = WorkdirLock(workdir), None
  if is_main:
    try:
      lock.acquire()
    except errors.WorkdirBusy as e:
      busy = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    got = multihost_utils.broadcast_one_to_all(np.int32(busy is None))
    if not got and busy is None:
      busy = errors.WorkdirBusy(f"workdir {workdir} is in use by another trainer.")
  if busy is not None:
    raise busy
  try:
    yield lock
  finally:
    if is_main:
      lock.release()


def remove_if_only_the_lock(workdir) -> None:
  """A refused start's workdir, when it made it and it holds only the lock, removed."""
  if fileio.is_remote(workdir) or not workdir.is_dir():
    return
  if {p.name for p in workdir.iterdir()} <= {LOCAL_LOCK}:
    (workdir / LOCAL_LOCK).unlink(missing_ok=True)
    workdir.rmdir()
