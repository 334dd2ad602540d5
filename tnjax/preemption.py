"""Preemption: SIGTERM finishes the current step, saves, and ends the run with exit code 75.

Spot and queued TPU VMs get SIGTERM shortly before they go away; a sweep's
trainer gets it when the sweep dies (parent-death signal). One process: a
Python handler sets a flag that the loop reads after each step. Several
processes: JAX's preemption sync manager (started by jax.distributed.initialize)
catches the signal or the TPU maintenance notice on any host and makes every
process agree on the same step to stop at, so they save together.
"""

from __future__ import annotations

import signal
import threading

import jax


class PreemptionWatcher:
  """`reached(step)` is True (on every process at the same step) once a stop was requested."""

  def __init__(self, signals=(signal.SIGTERM,)):
    self.multihost = jax.process_count() > 1
    self.requested = False
    self._previous = {}
    if self.multihost or threading.current_thread() is not threading.main_thread():
      return  # multi-host: JAX's own handler; threads cannot set handlers
    for signum in signals:
      self._previous[signum] = signal.signal(signum, self._on_signal)

  def _on_signal(self, signum, frame):
    del frame
    self.requested = True
    print(
      f"tnjax: received {signal.Signals(signum).name}; saving at the end of this step.", flush=True
    )

  def reached(self, step: int) -> bool:
    if self.multihost:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def close(self) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}
