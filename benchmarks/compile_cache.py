r"""JAX's persistent compilation cache on tnjax training steps: a fresh process, then one
that finds the cache filled.

  python -m benchmarks.compile_cache [--points adtn_lenet5_mnist adtn_fc2_mnist]
  # -> benchmarks/results/compile_cache_<backend>.md

Each point's training step (`benchmarks.train_step.timed_step_call`, the compressed network)
is built and run once in a new Python process, twice in a row, with
JAX_COMPILATION_CACHE_DIR set to an empty temporary folder: the first process compiles and
fills the cache, the second reads it. Reported: seconds from building the step to its first
result in each, which is what a resumed, preempted or swept run pays before it trains.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import jax

from benchmarks import paper_points
from benchmarks.common import describe_machine, record_end_load, report_header, publish

_CHILD = """
import sys
from benchmarks import paper_points, train_step
config = paper_points.load(sys.argv[1], sys.argv[2])
print(train_step.timed_step_call(config, dense=False)[1])
"""


def _first_step_seconds(name: str, arg: str, cache_dir: str) -> float:
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache_dir)
  done = subprocess.run(
    [sys.executable, "-c", _CHILD, name, arg], env=env, capture_output=True, text=True, check=True
  )
  return float(done.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--points", nargs="+", default=["adtn_lenet5_mnist", "adtn_fc2_mnist"])
  parser.add_argument(
    "--out", default=f"benchmarks/results/compile_cache_{jax.default_backend()}.md"
  )
  args = parser.parse_args()
  known = {name for name, _ in paper_points.points()}
  machine = describe_machine()
  rows = []
  for name in args.points:
    if name not in known:
      parser.error(f"--points: {name!r} is not a config of benchmarks/paper_points.py.")
    with tempfile.TemporaryDirectory() as cache_dir:
      cold = _first_step_seconds(name, "", cache_dir)
      warm = _first_step_seconds(name, "", cache_dir)
    rows.append({"config": name, "cold_s": cold, "cached_s": warm})
    print(rows[-1], flush=True)
  record_end_load(machine)
  lines = [
    *report_header(
      "First training step, empty vs filled compilation cache",
      machine,
      f"python -m benchmarks.compile_cache {' '.join(sys.argv[1:])}",
    ),
    "Seconds from building the step to its first result, in a fresh process each time.",
    "",
    "| config | empty cache s | filled cache s | saved |",
    "|---|---:|---:|---:|",
  ]
  for row in rows:
    lines.append(
      f"| {row['config']} | {row['cold_s']:.1f} | {row['cached_s']:.1f} | "
      f"{row['cold_s'] / row['cached_s']:.1f}x |"
    )
  publish(args.out, lines, {"machine": machine, "rows": rows})


if __name__ == "__main__":
  main()
