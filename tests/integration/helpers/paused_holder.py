"""Holds a gs:// workdir lock and writes a tick file every 0.1 s (each after lock.check()),
as a trainer writes checkpoints; the test pauses it with SIGSTOP past the stale time.

  python paused_holder.py gs://bucket/point STALE_SECONDS
"""

import sys
import time

from tnjax import errors, fileio
from tnjax.training import run_lock

workdir, stale = sys.argv[1], float(sys.argv[2])
lock = run_lock.WorkdirLock(workdir, stale_seconds=stale).acquire()
print("acquired", flush=True)


def tick(n: int) -> None:
  lock.check()
  fileio.write_text(fileio.Path(workdir) / f"tick_{n:05d}.txt", repr(time.time()))


sys.exit(errors.run_cli(lambda: [(tick(n), time.sleep(0.1)) for n in range(100000)]))
