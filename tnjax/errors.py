"""How a run ends: exit codes, the errors behind them, and the CLI wrapper that prints them.

A run ends in one of four ways, each with its own exit code and last line:
finished (0), stopped (saved; rerun the same command to resume: 75 after SIGTERM,
a preemption; 130 after SIGINT, Ctrl-C), diverged (3: non-finite loss, nothing
saved after it) or failed. Failures a user can fix (a bad config,
a missing file, a workdir held by another trainer) print one line and exit 2;
`--debug` or TNJAX_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3
EXIT_WORKDIR_BUSY = 4
EXIT_LOCK_LOST = 5  # a gs:// workdir's lock was taken over while this run was paused
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: try again later (a rerun resumes)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C (saved; a rerun resumes)
# Exits after which the same command resumes where the run stopped.
RESUMABLE_EXITS = (EXIT_PREEMPTED, EXIT_INTERRUPTED)


class UserError(ValueError):
  """A problem the user can fix (config, paths, data): shown as one line."""

  exit_code = EXIT_USER_ERROR


class WorkdirBusy(UserError):
  """Another live trainer holds the workdir's lock."""

  exit_code = EXIT_WORKDIR_BUSY


class LockLost(UserError):
  """Another host took this run's gs:// workdir lock over; nothing more was written."""

  exit_code = EXIT_LOCK_LOST


class Diverged(RuntimeError):
  """The loss became non-finite; the last checkpoint predates it."""

  exit_code = EXIT_DIVERGED


class Preempted(Exception):
  """SIGTERM (or a preemption notice) arrived; a checkpoint was saved at `step`."""

  exit_code = EXIT_PREEMPTED

  def __init__(self, step: int):
    super().__init__(f"checkpoint saved at step {step}; rerun the same command to resume")
    self.step = step


class Interrupted(Preempted):
  """SIGINT (Ctrl-C) arrived; a checkpoint was saved at `step`."""

  exit_code = EXIT_INTERRUPTED


# Errors whose message is the whole story; anything else is a bug and keeps its traceback.
ONE_LINE_ERRORS = (UserError, Diverged, Preempted)
# What the library raises for bad input (a spec's ValueError naming the field, a missing
# file): while a program reads its config, data and weights, these are the user's to fix.
INPUT_ERRORS = (
  ValueError,
  FileNotFoundError,
  FileExistsError,
  NotADirectoryError,
  IsADirectoryError,
)


@contextlib.contextmanager
def input_errors_are_user_errors():
  """Inside it, INPUT_ERRORS become UserErrors (one line); use it only around the steps
  that interpret user input, so that the same errors elsewhere keep their tracebacks."""
  try:
    yield
  except UserError:
    raise
  except INPUT_ERRORS as e:
    raise UserError(str(e) or type(e).__name__) from e


def debug_enabled(argv=None) -> bool:
  argv = sys.argv if argv is None else argv
  return os.environ.get("TNJAX_DEBUG", "") not in ("", "0") or "--debug" in argv


_CLOUD_ACCESS_ERRORS = (  # by name: aiohttp and google-auth are optional (gcsfs's extra)
  "ClientConnectorError",
  "ClientConnectorDNSError",
  "ServerDisconnectedError",
  "DefaultCredentialsError",
  "RefreshError",
  "TransportError",
)


def _is_cloud_access_error(error: BaseException) -> bool:
  """A network or credentials failure on the way to gs:// (anywhere in the chain)."""
  while error is not None:
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & set(_CLOUD_ACCESS_ERRORS) or isinstance(error, (ConnectionError, socket.gaierror)):
      return True
    error = error.__cause__ or error.__context__
  return False


def run_cli(main, argv=None) -> int:
  """Calls main(); known errors become one stderr line and their exit code."""
  try:
    main()
  except ONE_LINE_ERRORS as e:
    if debug_enabled(argv):
      raise
    code = getattr(e, "exit_code", EXIT_USER_ERROR)
    kind = {Interrupted: "interrupted", Preempted: "preempted"}.get(type(e), "error")
    hint = " (--debug shows the traceback)" if code in (EXIT_USER_ERROR, EXIT_WORKDIR_BUSY) else ""
    print(f"tnjax: {kind}: {' '.join(str(e).split())}{hint}", file=sys.stderr, flush=True)
    return code
  except Exception as e:  # pylint: disable=broad-except
    if not _is_cloud_access_error(e) or debug_enabled(argv):
      raise
    reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
    print(
      f"tnjax: error: cannot reach cloud storage ({reason}); check the network and the "
      "credentials (gcloud auth application-default login), or use a local path. "
      "(--debug shows the traceback)",
      file=sys.stderr,
      flush=True,
    )
    return EXIT_USER_ERROR
  except KeyboardInterrupt:  # Ctrl-C before training began (or after it ended): nothing to save
    if debug_enabled(argv):
      raise
    print("tnjax: interrupted (nothing was being trained; nothing lost)", file=sys.stderr)
    return EXIT_INTERRUPTED
  return 0
