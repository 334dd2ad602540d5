"""One writer per run: an exclusive lock on the workdir, held by process 0 for the run's life.

Local workdirs use flock(2) on WORKDIR/.lock: the kernel drops the lock when the
holder dies, however it dies, so a stale lock cannot exist. On gs:// there is no
such primitive, so the lock is an object (WORKDIR/lock.json) naming its holder
and refreshed by a heartbeat thread; a lock whose heartbeat is older than
`stale_seconds` belongs to a dead holder and is taken over (at once if the
holder was on this host and its process is gone). Two trainers that
race for a free GCS lock both write, wait, and read back: only the one whose
write survived proceeds.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
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
    return fileio.read_json(path)
  except (json.JSONDecodeError, OSError):
    return None


class WorkdirLock:
  """`with WorkdirLock(workdir):` runs with the lock held, or raises WorkdirBusy."""

  def __init__(self, workdir, *, stale_seconds: float = 120.0, settle_seconds: float = 1.0):
    self.workdir = fileio.workdir_path(workdir)
    self.stale_seconds = stale_seconds
    self.settle_seconds = settle_seconds
    self.identity = _identity()
    self._file = None
    self._stop = threading.Event()
    self._thread = None

  def _busy(self, name: str) -> errors.WorkdirBusy:
    return errors.WorkdirBusy(
      f"workdir {self.workdir} is in use by {name}; wait for it to "
      "finish or stop it, or choose another --workdir."
    )

  def acquire(self) -> "WorkdirLock":
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

  def _record(self) -> dict:
    return {**self.identity, "heartbeat": time.time(), "stale_seconds": self.stale_seconds}

  def _acquire_remote(self):
    path = self.workdir / REMOTE_LOCK
    current = _read_remote(path)
    if _alive(current):
      raise self._busy(current["holder"])
    fileio.write_json(path, self._record())
    time.sleep(self.settle_seconds)  # a racing writer's object would replace ours by now
    current = _read_remote(path)
    if not current or current.get("holder") != self.identity["holder"]:
      raise self._busy(current["holder"] if current else "another process")
    self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="tnjax-lock")
    self._thread.start()

  def _heartbeat(self):
    path = self.workdir / REMOTE_LOCK
    while not self._stop.wait(self.stale_seconds / 4):
      current = _read_remote(path)
      if current and current.get("holder") != self.identity["holder"]:
        print(
          f"tnjax: warning: the lock on {self.workdir} was taken by {current['holder']}", flush=True
        )
        return
      fileio.write_json(path, self._record())

  def release(self) -> None:
    if self._file is not None:
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()
      self._file = None
    if self._thread is not None:
      self._stop.set()
      self._thread.join()
      self._thread = None
      path = self.workdir / REMOTE_LOCK
      current = _read_remote(path)
      if current and current.get("holder") == self.identity["holder"]:
        path.unlink(missing_ok=True)

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
