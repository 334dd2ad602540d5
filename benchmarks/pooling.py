r"""The zoo's 2x2 max pooling against nnx.max_pool, inside whole training steps.

  python -m benchmarks.pooling [--repeats 15]   # -> benchmarks/results/pooling_<backend>.md

For each CNN of the zoo that pools 2x2 (LeNet-5, the CPAC CNN, the small CIFAR CNN,
VGG-16 on CIFAR), the dense network's training step (`benchmarks.train_step.step_call`)
is traced once with `nnx.max_pool` (reduce-window; its gradient a select-and-scatter)
and once with `tnjax.models.pooling.max_pool_2x2` (reshape and max); the two steps are
timed in turn in the same run.
"""

from __future__ import annotations

import argparse
import sys

import jax
from flax import nnx

from benchmarks import paper_points
from benchmarks.common import (
  describe_machine,
  record_end_load,
  report_header,
  time_interleaved,
  publish,
)
from benchmarks.train_step import step_call
from tnjax import models  # noqa: F401  (importing the package loads the zoo's modules)
from tnjax.models import pooling

POINTS = (
  ("sketch_mnist", ""),
  ("cpac_mnist", "fast"),
  ("sketch_cifar10", ""),
  ("adtn_vgg16_cifar10", ""),
)


def _model_modules():
  """The zoo's modules that pool with max_pool_2x2 (a module global, looked up when traced)."""
  return [
    module
    for name, module in sorted(sys.modules.items())
    if name.startswith("tnjax.models.")
    and getattr(module, "max_pool_2x2", None) is pooling.max_pool_2x2
    and module is not pooling
  ]


def _nnx_max_pool(x):
  return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))


def _traced_step(config, pool):
  """The dense twin's step, traced (so compiled) while the zoo pools with `pool`."""
  modules = _model_modules()
  for module in modules:
    module.max_pool_2x2 = pool
  try:
    call, _ = step_call(config, dense=True)
    jax.block_until_ready(call())
  finally:
    for module in modules:
      module.max_pool_2x2 = pooling.max_pool_2x2
  return call


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--repeats", type=int, default=15)
  parser.add_argument("--out", default=f"benchmarks/results/pooling_{jax.default_backend()}.md")
  args = parser.parse_args()
  machine = describe_machine()
  calls, rows = {}, []
  for name, arg in POINTS:
    config = paper_points.load(name, arg)
    label = f"{config.model.name} ({name}{':' + arg if arg else ''}), batch {config.batch_size}"
    calls[label, "nnx"] = _traced_step(config, _nnx_max_pool)
    calls[label, "tnjax"] = _traced_step(config, pooling.max_pool_2x2)
    rows.append(label)
  stats = time_interleaved(calls, repeats=args.repeats, min_repeats=3, max_seconds=300)
  record_end_load(machine)
  lines = [
    *report_header(
      "2x2 max pooling in the zoo's training steps",
      machine,
      f"python -m benchmarks.pooling {' '.join(sys.argv[1:])}",
    ),
    "Median ms per training step of each dense network, the steps timed in turn.",
    "",
    "| network | nnx.max_pool | max_pool_2x2 | speed-up |",
    "|---|---:|---:|---:|",
  ]
  for label in rows:
    before, after = stats[label, "nnx"]["median_ms"], stats[label, "tnjax"]["median_ms"]
    lines.append(f"| {label} | {before:.3g} | {after:.3g} | {before / after:.2f}x |")
  publish(
    args.out, lines, {"machine": machine, "stats": {" / ".join(k): v for k, v in stats.items()}}
  )


if __name__ == "__main__":
  main()
