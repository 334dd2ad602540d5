r"""Training steps with and without glibc's huge-page tunable (Linux, glibc >= 2.35).

  python -m benchmarks.huge_pages [--filter adtn_fc2] [--rounds 3] [--repeats 9]
    # -> benchmarks/results/huge_pages_<backend>.md

XLA on CPU allocates a step's temporary buffers on every call; glibc serves those
above 32 MB with fresh mmap'd memory, so each call pays a page fault per 4 kB page
it touches (an ADTN FC-2 step touches ~170 MB: ~44,000 faults). Started with
`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` and transparent huge pages in `madvise` or
`always` mode, a process gets 2 MB pages there instead. The tunable is read when a
process starts, so each round runs `benchmarks.train_step` in two fresh processes,
one with and one without it (any other GLIBC_TUNABLES set is left out of both),
alternating which goes first. Timings vary more from one process to the next than
within one, hence several rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import jax

from benchmarks.common import describe_machine, record_end_load, report_header, publish

TUNABLE = "glibc.malloc.hugetlb=1"


def _train_steps(args, huge: bool, directory: str) -> list[dict]:
  out = os.path.join(directory, f"{'huge' if huge else 'plain'}.md")
  env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
  if huge:
    env["GLIBC_TUNABLES"] = TUNABLE
  command = [sys.executable, "-m", "benchmarks.train_step", "--filter", args.filter]
  command += ["--repeats", str(args.repeats), "--out", out]
  subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
  with open(os.path.splitext(out)[0] + ".json") as f:
    return json.load(f)["rows"]


def _thp_mode() -> str:
  try:
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
      return next(word.strip("[]") for word in f.read().split() if word.startswith("["))
  except (OSError, StopIteration):
    return "unknown"


def _cell(values: list[float]) -> str:
  """Median over the rounds, and their range."""
  return f"{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"


def _check_supported() -> None:
  """Refuses, in one line, a machine where the tunable cannot change anything."""
  library, version = platform.libc_ver()
  parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
  if library != "glibc" or parts < (2, 35):
    raise SystemExit(f"huge_pages: needs glibc >= 2.35 for {TUNABLE}; this is {library} {version}.")
  if _thp_mode() == "never":
    raise SystemExit("huge_pages: transparent huge pages are off (never) on this machine.")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--filter", default="adtn_fc2")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--repeats", type=int, default=9)
  parser.add_argument("--out", default=f"benchmarks/results/huge_pages_{jax.default_backend()}.md")
  args = parser.parse_args()
  _check_supported()
  machine = describe_machine()
  machine["libc"] = " ".join(platform.libc_ver())
  rounds = {False: [], True: []}  # huge pages? -> one list of rows per round
  with tempfile.TemporaryDirectory() as directory:
    for round_index in range(args.rounds):
      for huge in (False, True) if round_index % 2 == 0 else (True, False):
        rounds[huge].append(_train_steps(args, huge, directory))
  record_end_load(machine)
  lines = [
    *report_header(
      "Training step with and without huge pages",
      machine,
      f"python -m benchmarks.huge_pages {' '.join(sys.argv[1:])}",
      f"; {machine['libc']}; transparent huge pages: {_thp_mode()}",
    ),
    f"ms per step: the median over {args.rounds} rounds (and their range) of each process's",
    "median step (`benchmarks.train_step`: the config's optimizer and batch, random images).",
    f"Each round is a plain process and one started with `GLIBC_TUNABLES={TUNABLE}`,",
    "alternating which goes first. Speed-up = plain / huge pages, of the medians.",
    "",
    "| config | batch | dense plain | dense huge pages | speed-up | compressed plain "
    "| compressed huge pages | speed-up |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for index, row in enumerate(rounds[False][0]):
    cells = [row["config"], str(row["batch"])]
    for variant in ("dense", "compressed"):
      plain, huge = (
        [rows[index]["stats"][variant]["median_ms"] for rows in rounds[h]] for h in (False, True)
      )
      speedup = statistics.median(plain) / statistics.median(huge)
      cells += [_cell(plain), _cell(huge), f"{speedup:.2f}x"]
    lines.append("| " + " | ".join(cells) + " |")
  publish(args.out, lines, {"machine": machine, "plain": rounds[False], "huge_pages": rounds[True]})


if __name__ == "__main__":
  main()
