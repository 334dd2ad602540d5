r"""Training steps with the state passed to jit as an nnx.State against a flat list of arrays.

  python -m benchmarks.flat_state [--repeats 100]   # -> benchmarks/results/flat_state_<backend>.md

The trainer's loop keeps its state flat (tnjax.training.step): `jax.jit` walks an nnx.State
pytree in Python on every call, in and out. Both calls below run the same traced step
(`benchmarks.train_step.built_step`): one jitted over the State, as the trainer did before,
one over the flat leaves, as it does now; they are timed in turn in the same run.
"""

from __future__ import annotations

import argparse
import sys

import jax

from benchmarks import paper_points
from benchmarks.common import describe_machine, publish, record_end_load, report_header
from benchmarks.common import time_interleaved
from benchmarks.train_step import built_step

POINTS = (
  ("cpac_mnist", ""),
  ("cpac_mnist", "fast"),
  ("mr_mnist", ""),
  ("tt_mnist", ""),
  ("sketch_mnist", ""),
  ("dense_mnist", ""),
)


def _calls(config):
  step, state, arrays, indices, _ = built_step(config, dense=False)
  leaves = step.flatten(state)
  flat_step = step._step.__wrapped__  # pylint: disable=protected-access  # the traced function

  @jax.jit
  def over_state(state, arrays, indices):  # the trainer's step before: (state, metrics) out
    new_leaves, metrics = flat_step(step.flatten(state), arrays, indices)
    return step.unflatten(new_leaves), metrics

  return len(leaves), {
    "state": lambda: over_state(state, arrays, indices),
    "flat": lambda: step.run(leaves, arrays, indices),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--repeats", type=int, default=100)
  parser.add_argument("--out", default=f"benchmarks/results/flat_state_{jax.default_backend()}.md")
  args = parser.parse_args()
  machine = describe_machine()
  rows, data = [], {}
  for name, arg in POINTS:
    config = paper_points.load(name, arg)
    count, calls = _calls(config)
    stats = time_interleaved(calls, repeats=args.repeats, min_seconds=3, max_seconds=30)
    label = f"{name}{':' + arg if arg else ''}, batch {config.batch_size}"
    before, after = stats["state"]["median_ms"], stats["flat"]["median_ms"]
    rows.append(f"| {label} | {count} | {before:.3g} | {after:.3g} | {before / after:.2f}x |")
    data[label] = {"arrays": count, **stats}
  record_end_load(machine)
  lines = [
    *report_header(
      "Training steps: the state as an nnx.State or as a flat list of arrays",
      machine,
      f"python -m benchmarks.flat_state {' '.join(sys.argv[1:])}",
    ),
    "Median ms per training step of the config's compressed model, the two timed in turn.",
    "",
    "| config | state arrays | jit over nnx.State | flat arrays | speed-up |",
    "|---|---:|---:|---:|---:|",
    *rows,
  ]
  publish(args.out, lines, {"machine": machine, "rows": data})


if __name__ == "__main__":
  main()
