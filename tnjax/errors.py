"""How a run ends: exit codes, the errors behind them, and the CLI wrapper that prints them.

A run ends in one of four ways, each with its own exit code and last line:
finished (0), preempted (75: saved, rerun to resume), diverged (3: non-finite
loss, nothing saved after it) or failed. Failures a user can fix (a bad config,
a missing file, a workdir held by another trainer) print one line and exit 2;
`--debug` or TNJAX_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3
EXIT_WORKDIR_BUSY = 4
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: try again later (a rerun resumes)


class UserError(ValueError):
  """A problem the user can fix (config, paths, data): shown as one line."""

  exit_code = EXIT_USER_ERROR


class WorkdirBusy(UserError):
  """Another live trainer holds the workdir's lock."""

  exit_code = EXIT_WORKDIR_BUSY


class Diverged(RuntimeError):
  """The loss became non-finite; the last checkpoint predates it."""

  exit_code = EXIT_DIVERGED


class Preempted(Exception):
  """SIGTERM (or a preemption notice) arrived; a checkpoint was saved at `step`."""

  exit_code = EXIT_PREEMPTED

  def __init__(self, step: int):
    super().__init__(f"checkpoint saved at step {step}; rerun the same command to resume")
    self.step = step


# Errors whose message is the whole story; anything else is a bug and keeps its traceback.
ONE_LINE_ERRORS = (UserError, ValueError, FileNotFoundError, FileExistsError, Diverged, Preempted)


def debug_enabled(argv=None) -> bool:
  argv = sys.argv if argv is None else argv
  return os.environ.get("TNJAX_DEBUG", "") not in ("", "0") or "--debug" in argv


def run_cli(main, argv=None) -> int:
  """Calls main(); known errors become one stderr line and their exit code."""
  try:
    main()
  except ONE_LINE_ERRORS as e:
    if debug_enabled(argv):
      raise
    code = getattr(e, "exit_code", EXIT_USER_ERROR)
    kind = "preempted" if isinstance(e, Preempted) else "error"
    hint = " (--debug shows the traceback)" if code in (EXIT_USER_ERROR, EXIT_WORKDIR_BUSY) else ""
    print(f"tnjax: {kind}: {' '.join(str(e).split())}{hint}", file=sys.stderr, flush=True)
    return code
  return 0
