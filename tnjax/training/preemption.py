"""Preemption and Ctrl-C: SIGTERM or SIGINT finishes the current step, saves, and ends
the run with exit code 75 (SIGTERM) or 130 (SIGINT); either way a rerun resumes.

Spot and queued TPU VMs get SIGTERM shortly before they go away; a sweep's
trainer gets it when the sweep dies (parent-death signal). One process: a
Python handler sets a flag that the loop reads after each step. Several
processes: JAX's preemption sync manager (started by jax.distributed.initialize)
catches the signal or the TPU maintenance notice on any host and makes every
process agree on the same step to stop at, so they save together.
"""

from __future__ import annotations

import os
import signal
import threading

import jax

from tnjax import errors


# Set by a watcher on its first signal: the run is saving and about to end.
_STOPPING = threading.Event()
_IN_A_PROGRAM = threading.Event()  # program_signal_handlers() ran: this process is a CLI


def program_signal_handlers() -> None:
  """For a program's process (not a library caller's): Ctrl-C and SIGTERM act as usual
  outside training, but once a training stop was requested, repeated signals are ignored
  until the process exits, so they cannot cut the save short or change the exit code."""

  def handler(signum, frame):
    del frame
    if _STOPPING.is_set():
      return
    if signum == signal.SIGINT:
      raise KeyboardInterrupt
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)

  if threading.current_thread() is threading.main_thread():
    _IN_A_PROGRAM.set()
    for signum in (signal.SIGTERM, signal.SIGINT):
      signal.signal(signum, handler)


class PreemptionWatcher:
  """`reached(step)` is True (on every process at the same step) once a stop was requested."""

  def __init__(self, signals=(signal.SIGTERM, signal.SIGINT)):
    self.multihost = jax.process_count() > 1
    self.requested = False
    self.signal = None  # the first signal received: it decides the exit code
    self._previous = {}
    if self.multihost or threading.current_thread() is not threading.main_thread():
      return  # multi-host: JAX's own handler; threads cannot set handlers
    for signum in signals:
      self._previous[signum] = signal.signal(signum, self._on_signal)

  def _on_signal(self, signum, frame):
    del frame
    if self.requested:  # a repeated signal (a second Ctrl-C): the save under way goes on
      return
    self.requested, self.signal = True, signum
    _STOPPING.set()
    print(
      f"tnjax: received {signal.Signals(signum).name}; saving at the end of this step.", flush=True
    )

  def stop(self, step: int) -> Exception:
    """The exception that ends the run once the checkpoint at `step` is saved."""
    if self.signal == signal.SIGINT:
      return errors.Interrupted(step)
    return errors.Preempted(step)

  def reached(self, step: int) -> bool:
    if self.multihost:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested

  def close(self) -> None:
    # A program that saved after a signal ignores further ones until it exits: Python
    # restores the default handlers while it shuts down, which a repeated signal would
    # turn into a kill (exit 143) after the checkpoint and the one line were written.
    ignore = self.requested and _IN_A_PROGRAM.is_set()
    for signum, handler in self._previous.items():
      signal.signal(signum, signal.SIG_IGN if ignore else handler)
    self._previous = {}
