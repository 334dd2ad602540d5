r"""Training-step time of every paper config against its dense twin, same machine, same run.

  python -m benchmarks.train_step                 # -> benchmarks/results/train_step_<backend>.{md,json}
  python -m benchmarks.train_step --filter adtn --repeats 5
  python -m benchmarks.train_step --dtype bfloat16
  python -m benchmarks.train_step --imagenet      # also the 224x224 VGG configs (slow on CPU)

Each config point of benchmarks/paper_points.py (every config's default, plus
EXTRA_POINTS) is built as the trainer builds it, with its optimizer, at its batch
size; the dense twin is the same network with every layer a plain dense / conv
layer. The step is tnjax.training.step.TrainStep (forward, backward, optimizer update,
BatchNorm statistics, dropout, the config's augmentation) on a fixed batch of
random images, jitted, the two timed in turn (benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
from flax import nnx

from benchmarks import paper_points
from benchmarks.common import (
  ms_cell,
  describe_machine,
  record_end_load,
  report_header,
  time_interleaved,
  write_results,
)
from tnjax.training import optim
from tnjax.training import step as step_lib
from tnjax.data import pipeline as data_pipeline
from tnjax.nn import total_params


def built_step(config, dense: bool):
  """(TrainStep, its state, the in-memory batch arrays, the batch indices, parameter count) of
  the config's model (or its dense twin), on random images."""
  model = paper_points.build(config, dense=dense)
  params = total_params(model)
  schedule = optim.make_schedule(config.schedule, 100, config.num_epochs)
  optimizer = nnx.Optimizer(model, optim.make_optimizer(config.optimizer, schedule), wrt=nnx.Param)
  graphdef, state = nnx.split({"model": model, "optimizer": optimizer})
  shape, classes = paper_points.sizes(config)
  batch = config.batch_size
  images = jax.random.normal(jax.random.key(0), (batch,) + shape)
  labels = jax.random.randint(jax.random.key(1), (batch,), 0, classes)
  arrays = {"train": (images, labels)}  # the in-memory input: a gather by index in the step
  step = step_lib.TrainStep(
    graphdef, data_pipeline.gather_train, config.data.get("augment", ""), 0, donate_state=False
  )
  return step, state, arrays, jnp.arange(batch), params


def step_call(config, dense: bool):
  """A zero-argument jitted training step of the config's model (or its dense twin), on the
  flat state as the trainer's loop passes it."""
  step, state, arrays, indices, params = built_step(config, dense)
  leaves = step.flatten(state)
  return (lambda: step.run(leaves, arrays, indices)), params


def timed_step_call(config, dense: bool):
  """step_call's step, run once, and the seconds from building it to that first result
  (tracing and compiling, mostly)."""
  start = time.perf_counter()
  call, _ = step_call(config, dense=dense)
  jax.block_until_ready(call())
  return call, time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--filter", default="", help="only configs whose name contains this")
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--max_seconds", type=float, default=60.0)
  parser.add_argument("--dtype", default=None, help="compute dtype, e.g. bfloat16")
  parser.add_argument("--imagenet", action="store_true", help="include 224x224 ImageNet configs")
  parser.add_argument(
    "--max_dense_params", type=float, default=2e8, help="skip configs whose dense twin is larger"
  )
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  suffix = f"_{args.dtype}" if args.dtype else ""
  out = args.out or f"benchmarks/results/train_step_{jax.default_backend()}{suffix}.md"
  machine = describe_machine()
  command = "python -m benchmarks.train_step " + " ".join(sys.argv[1:])
  rows = []
  for name, arg in paper_points.points():
    if args.filter not in name:
      continue
    config = paper_points.load(name, arg)
    if config.data.name == "imagenet2012" and not args.imagenet:
      continue
    if args.dtype:
      config.dtype = args.dtype
    label = name + (f"({arg})" if arg else "")
    dense_size = sum(
      x.size
      for x in jax.tree.leaves(
        nnx.state(nnx.eval_shape(lambda c=config: paper_points.build(c, dense=True)), nnx.Param)
      )
    )
    if dense_size > args.max_dense_params:
      print(f"{label}: skipped, its dense twin has {dense_size:,} parameters", flush=True)
      continue
    calls, params = {}, {}
    for variant in ("dense", "compressed"):
      calls[variant], params[variant] = step_call(config, dense=variant == "dense")
    stats = time_interleaved(
      calls, repeats=args.repeats, min_repeats=3, max_seconds=args.max_seconds
    )
    row = {
      "config": label,
      "batch": config.batch_size,
      "params": params,
      "stats": stats,
      "slowdown": stats["compressed"]["median_ms"] / stats["dense"]["median_ms"],
    }
    rows.append(row)
    print(f"{label}: {row['slowdown']:.2f}x the dense step", flush=True)
    write(rows, machine, command, out)  # after every config: a crash keeps what was measured


def write(rows, machine, command, out):
  machine = dict(machine)  # the caller's stays without an end: write runs after every config
  record_end_load(machine)
  lines = [
    *report_header("Training step of each paper config vs its dense twin", machine, command),
    "Median ms per step (interquartile range), the two timed in turn; the config's",
    "optimizer, batch size and augmentation; random images. Ratio = compressed / dense",
    "(< 1: the compressed network steps faster).",
    "",
    "| config | batch | params (compressed / dense) | dense ms | compressed ms | ratio | repeats |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    d, c = r["stats"]["dense"], r["stats"]["compressed"]
    lines.append(
      f"| {r['config']} | {r['batch']} | {r['params']['compressed']:,} / "
      f"{r['params']['dense']:,} | {ms_cell(d)} | {ms_cell(c)} | **{r['slowdown']:.2f}x** | "
      f"{c['repeats']} |"
    )
  text = "\n".join(lines) + "\n"
  write_results(out, text, {"machine": machine, "command": command, "rows": rows})


if __name__ == "__main__":
  main()
