r"""Exported inference artefacts: file size and CPU latency, compressed against dense.

  python -m benchmarks.export        # -> benchmarks/results/export_<backend>.{md,json}

Each pair is one network exported twice by tnjax.compression.serving (batch-polymorphic
jax.export artefacts, weights inside): dense, and with its large layers compressed as the
papers do. Latency is the deserialized artefact's call, jitted, median of --repeats, at
batch 1 and 64, the two timed in turn in the same run (benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import ml_collections
import numpy as np
from flax import nnx

from benchmarks.common import describe_machine, machine_line, record_end_load, time_interleaved
from tnjax import models
from tnjax.compression import serving

PAIRS = {
  "FC-2 (1024-1024-10)": (
    {"name": "fc2"},
    {"name": "fc2", "layers": {"hidden": {"kind": "tt", "ranks": 8}}},
    (32, 32, 1),
  ),
  "LeNet-5": (
    {"name": "lenet5"},
    {
      "name": "lenet5",
      "layers": {
        "conv2": {"kind": "tucker", "in_rank": 3, "out_rank": 8},
        "fc1": {"kind": "tt", "ranks": 4},
        "fc2": {"kind": "lowrank", "rank": 16},
      },
    },
    (28, 28, 1),
  ),
}


def _artefact(model_config: dict, image_shape):
  model = models.build_model(model_config, image_shape, 10, rngs=nnx.Rngs(0))
  config = ml_collections.ConfigDict(
    {"data": {"source": "synthetic", "synthetic": {"image_shape": image_shape, "num_classes": 10}}}
  )
  data = serving.export_model(model, config, {})
  return data, jax.export.deserialize(bytearray(data))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=30)
  parser.add_argument("--out", default="benchmarks/results")
  args = parser.parse_args()
  machine = describe_machine()
  rows = []
  for name, (dense_config, small_config, image_shape) in PAIRS.items():
    dense_bytes, dense = _artefact(dense_config, image_shape)
    small_bytes, small = _artefact(small_config, image_shape)
    row = {"network": name, "dense_bytes": len(dense_bytes), "compressed_bytes": len(small_bytes)}
    for batch in (1, 64):
      x = np.random.default_rng(0).normal(size=(batch, *image_shape)).astype(np.float32)
      calls = {"dense": jax.jit(dense.call), "compressed": jax.jit(small.call)}
      stats = time_interleaved(
        {k: (lambda f=f: f(x)) for k, f in calls.items()}, repeats=args.repeats
      )
      row[f"batch{batch}_dense_ms"] = stats["dense"]["median_ms"]
      row[f"batch{batch}_compressed_ms"] = stats["compressed"]["median_ms"]
    rows.append(row)
  record_end_load(machine)
  backend = jax.default_backend()
  with open(os.path.join(args.out, f"export_{backend}.json"), "w") as f:
    json.dump({"machine": machine, "rows": rows}, f, indent=1)
  lines = [
    "# Exported artefacts: size and latency, compressed vs dense (`python -m benchmarks.export`)",
    "",
    f"Machine: {machine_line(machine)}. Median of {args.repeats} calls.",
    "",
    "| network | file dense | file compressed | size ratio | batch 1 dense / compressed ms "
    "| speed-up | batch 64 dense / compressed ms | speed-up |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    lines.append(
      f"| {r['network']} | {r['dense_bytes'] / 1e3:,.0f} kB | {r['compressed_bytes'] / 1e3:,.0f} kB"
      f" | {r['dense_bytes'] / r['compressed_bytes']:.1f}x | {r['batch1_dense_ms']:.3f} / "
      f"{r['batch1_compressed_ms']:.3f} | {r['batch1_dense_ms'] / r['batch1_compressed_ms']:.2f}x "
      f"| {r['batch64_dense_ms']:.3f} / {r['batch64_compressed_ms']:.3f} | "
      f"{r['batch64_dense_ms'] / r['batch64_compressed_ms']:.2f}x |"
    )
  with open(os.path.join(args.out, f"export_{backend}.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
