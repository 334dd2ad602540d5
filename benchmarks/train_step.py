r"""Training steps per second of VGG-16 (CIFAR variant): dense vs TT vs ADTN FC layers.

  python -m benchmarks.train_step --out benchmarks/results/train_step_cpu.md [--batch 128]

The step is tnjax.trainer.train_step (forward, backward, SGD-momentum update,
BatchNorm statistics, dropout) on a fixed batch of random 32x32 images, jitted,
timed interleaved with the other variants (benchmarks/common.py). FC6 and FC7
(512x512 in the CIFAR VGG) are the compressed layers, as in the ADTN paper.
"""

from __future__ import annotations

import argparse
import functools
import json
import os


import jax
import jax.numpy as jnp
import optax
from flax import nnx

from benchmarks.common import describe_machine, machine_line, time_interleaved
from tnjax import models, trainer
from tnjax.data import pipeline as data_pipeline
from tnjax.nn import total_params

VARIANTS = {
  "dense": {},
  "TT rank 4 (FC6, FC7)": {"fc6": {"kind": "tt", "ranks": 4}, "fc7": {"kind": "tt", "ranks": 4}},
  "ADTN M=2 (FC6, FC7)": {
    "fc6": {"kind": "adtn", "layers": 2},
    "fc7": {"kind": "adtn", "layers": 2},
  },
}


def step_call(layers, batch: int):
  model = models.build_model(
    {"name": "vgg", "variant": "cifar", "layers": layers},
    (32, 32, 3),
    10,
    rngs=nnx.Rngs(params=0, dropout=1),
  )
  params = total_params(model)
  optimizer = nnx.Optimizer(model, optax.sgd(0.01, momentum=0.9), wrt=nnx.Param)
  graphdef, state = nnx.split({"model": model, "optimizer": optimizer})
  images = jax.random.normal(jax.random.key(0), (batch, 32, 32, 3))
  labels = jax.random.randint(jax.random.key(1), (batch,), 0, 10)
  indices = jnp.arange(batch)
  arrays = {"train": (images, labels)}  # the in-memory input: a gather by index in the step
  step = jax.jit(
    functools.partial(trainer.train_step, graphdef, data_pipeline.gather_train, "", 0, None)
  )
  return (lambda: step(state, arrays, indices)), params


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--out", default=f"benchmarks/results/train_step_{jax.default_backend()}.md")
  args = parser.parse_args()
  machine = describe_machine()
  calls, params = {}, {}
  for name, layers in VARIANTS.items():
    calls[name], params[name] = step_call(layers, args.batch)
  stats = time_interleaved(calls, repeats=args.repeats, min_repeats=3, max_seconds=300)
  machine["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
  dense_ms = stats["dense"]["median_ms"]
  lines = [
    f"# VGG-16 (CIFAR variant) training step, batch {args.batch} ({machine['backend']})",
    "",
    f"Machine: {machine_line(machine)}",
    "",
    f"Command: `python -m benchmarks.train_step --batch {args.batch} --out {args.out}`",
    "",
    "Median ms per step (interquartile range), interleaved; speed-up = dense / variant.",
    "",
    "| FC6/FC7 | params | ms / step | steps / s | speed-up | repeats |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for name, s in stats.items():
    lines.append(
      f"| {name} | {params[name]:,} | {s['median_ms']:.0f} ({s['q25_ms']:.0f}-"
      f"{s['q75_ms']:.0f}) | {1000 / s['median_ms']:.2f} | "
      f"**{dense_ms / s['median_ms']:.2f}x** | {s['repeats']} |"
    )
  text = "\n".join(lines) + "\n"
  print(text)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    f.write(text)
  with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
    json.dump(
      {"machine": machine, "batch": args.batch, "params": params, "stats": stats}, f, indent=1
    )


if __name__ == "__main__":
  main()
