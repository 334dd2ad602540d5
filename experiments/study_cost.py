r"""The cost table of long studies: runs done of planned, minutes a run, hours spent and left.

  python experiments/study_cost.py "sketch=/work/runs/sketch/*@42" \
      "compress LeNet-5=/work/runs/compress/*lenet5_*@75" --out /tmp/cost.md

Each study is NAME=PATTERN@PLANNED: PATTERN matches its run directories (local or
gs://; a sweep workdir's points are `DIR/*`), PLANNED is how many runs the study
has in all (a sweep creates every point's directory up front, so there it is the
count; compress runs appear only once started). Minutes a run: the median over
finished runs of their summed epoch times. Epochs cut by a stop and resumed carry
no epoch time, so "spent" is a lower bound; "left" is (planned - done) x median.
"""

from __future__ import annotations

import argparse
import statistics

from tnjax import errors, fileio
from tnjax.training import run_files

import report_lib


def parse_study(spec: str) -> tuple[str, str, int]:
  """'NAME=PATTERN@PLANNED' -> (name, pattern, planned)."""
  name, sep, rest = spec.partition("=")
  pattern, at, planned = rest.rpartition("@")
  if not (sep and at and name and pattern and planned.isdigit()):
    raise errors.UserError(
      f"study_cost: {spec!r} is not NAME=PATTERN@PLANNED, e.g. 'sketch=runs/sketch/*@42'."
    )
  return name, pattern, int(planned)


def _run_dirs(pattern: str) -> list:
  """Run directories (holding config.json) matching PATTERN; the glob starts at its first '*'."""
  star = pattern.find("*")
  if star < 0:
    paths = [fileio.workdir_path(pattern)]
  else:
    head, slash, _ = pattern[:star].rpartition("/")
    base = (head or "/") if slash else "."
    paths = sorted(fileio.workdir_path(base).glob(pattern[len(head) + len(slash) :]), key=str)
  runs = [p for p in paths if (p / run_files.CONFIG).exists()]
  if not runs:
    raise errors.UserError(
      f"study_cost: {pattern!r} matches no run directory (one with config.json); "
      "a sweep's runs are DIR/*."
    )
  return runs


def study_row(name: str, pattern: str, planned: int) -> dict:
  runs = [report_lib.load_run(path) for path in _run_dirs(pattern)]
  minutes = [run["train_seconds"] / 60 for run in runs]
  finished = [m for run, m in zip(runs, minutes) if run["result"] is not None]
  per_run = statistics.median(finished) if finished else None
  return {
    "study": name,
    "done": len(finished),
    "planned": planned,
    "minutes_per_run": per_run,
    "hours_spent": sum(minutes) / 60,
    "hours_left": None if per_run is None else max(planned - len(finished), 0) * per_run / 60,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("studies", nargs="+", help="NAME=PATTERN@PLANNED")
  parser.add_argument("--out", default=None, help="also write the table to this .md file")
  args = parser.parse_args()
  rows = [study_row(*parse_study(spec)) for spec in args.studies]
  header = ["study", "runs done", "min / run (median)", "hours spent", "hours left (est.)"]
  table = [
    [
      r["study"],
      f"{r['done']} of {r['planned']}",
      "-" if r["minutes_per_run"] is None else f"{r['minutes_per_run']:.1f}",
      f"{r['hours_spent']:.1f}",
      "-" if r["hours_left"] is None else f"{r['hours_left']:.1f}",
    ]
    for r in rows
  ]
  text = report_lib.markdown_table(header, table)
  print(text)
  if args.out:
    fileio.write_text(args.out, text + "\n")


if __name__ == "__main__":
  report_lib.run_main(main)
