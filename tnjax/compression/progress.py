"""What a slow size search prints: its steps after a few seconds, its candidates' warnings once."""

from __future__ import annotations

import contextlib
import sys
import time
import warnings


class Progress:
  """Prints what a slow search tries, once it has run `after` seconds (fast ones stay quiet)."""

  def __init__(self, label: str, *, after: float = 3.0, quiet: bool = False):
    self.label, self.after, self.quiet = label, after, quiet
    self.start = time.perf_counter()

  def step(self, text: str) -> None:
    elapsed = time.perf_counter() - self.start
    if not self.quiet and elapsed >= self.after:
      print(f"  {self.label}: {text} [{elapsed:.0f} s]", file=sys.stderr, flush=True)


@contextlib.contextmanager
def warnings_summarised(label: str):
  """A search fits many candidates that may each warn alike: one line for them all."""
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    yield
  messages = list(dict.fromkeys(str(w.message) for w in caught))
  if messages:
    more = f" (and {len(messages) - 1} other warnings)" if len(messages) > 1 else ""
    warnings.warn(f"{label}: {len(caught)} candidate fit(s) warned: {messages[0]}{more}")
