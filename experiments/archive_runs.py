r"""Finished runs' small files kept with the repository, so studies span sessions.

  python experiments/archive_runs.py pack /work/runs/cpac_fast experiments/results/runs/cpac_fast.tar.gz
  python experiments/archive_runs.py restore experiments/results/runs/cpac_fast.tar.gz /work/runs/cpac_fast

`pack` keeps each finished (or diverged, or compressed) run's small files: point.json,
config.json, result.json, metrics.jsonl, compress.json, diverged.json (no checkpoints:
kilobytes per run). `restore` puts them back into a sweep workdir, where
`tnjax.sweep` skips those points as done (result.json) and the report scripts read them
as if they had just run; the unfinished points train as usual.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import tarfile

import report_lib

KEPT = (
  "point.json",
  "config.json",
  "result.json",
  "metrics.jsonl",
  "compress.json",
  "diverged.json",
  "search/search.json",  # a compression's rank search: its measurements and report
  "search/search.md",
)


def pack(workdir: str, archive: str) -> int:
  root = pathlib.Path(workdir)
  ended = ("result.json", "diverged.json", "compress.json")  # finished, or ended for good
  runs = sorted({p.parent for name in ended for p in root.glob(f"**/{name}")})
  pathlib.Path(archive).parent.mkdir(parents=True, exist_ok=True)
  with tarfile.open(archive, "w:gz") as tar:
    for run in runs:
      for name in KEPT:
        if (run / name).exists():
          data = (run / name).read_bytes()
          info = tarfile.TarInfo(str((run / name).relative_to(root)))
          info.size, info.mtime = len(data), 0  # stable archives: same runs, same bytes
          tar.addfile(info, io.BytesIO(data))
  return len(runs)


def restore(archive: str, workdir: str) -> int:
  with tarfile.open(archive, "r:gz") as tar:
    members = [
      m
      for m in tar.getmembers()
      if m.isfile()
      and any(m.name == k or m.name.endswith("/" + k) for k in KEPT)
      and not m.name.startswith("/")
      and ".." not in m.name.split("/")
    ]
    # Python < 3.11.4 (Debian 12's 3.11.2) has no extraction filters; the members above are
    # plain files under the workdir either way.
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    tar.extractall(workdir, members=members, **safe)
  return sum(1 for m in members if m.name.endswith("result.json"))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser("pack")
  p.add_argument("workdir")
  p.add_argument("archive")
  r = sub.add_parser("restore")
  r.add_argument("archive")
  r.add_argument("workdir")
  args = parser.parse_args()
  if args.command == "pack":
    print(f"packed {pack(args.workdir, args.archive)} finished runs into {args.archive}")
  else:
    print(f"restored {restore(args.archive, args.workdir)} finished runs into {args.workdir}")


if __name__ == "__main__":
  report_lib.run_main(main)
