r"""Speed of tnjax layers against the dense layer they replace, same machine, same run.

  python benchmarks/layers.py                 # writes benchmarks/results/layers_<backend>.{md,json}
  python benchmarks/layers.py --quick         # fewer repeats

For each case: forward, and forward+backward (gradients w.r.t. the parameters
and the input of sum(y**2)), jit-compiled, warmed up, median of repeats, float32.
Ratios are dense time / layer time (> 1: the layer is faster). Add a case to
CASES to benchmark a new layer kind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from benchmarks.common import describe_machine, time_fn  # noqa: E402
from tnjax.nn import make_conv, make_dense  # noqa: E402

FC6_TT4 = {"kind": "tt", "ranks": 4, "in_shape": (2, 7, 8, 8, 7, 4), "out_shape": (4,) * 6}
MNIST_TT8 = {"kind": "tt", "ranks": 8, "in_shape": (4, 8, 8, 4), "out_shape": (4, 8, 8, 4)}

# (case name, builder(rngs) -> (layer, dense baseline), input shape)
CASES = [
    ("FC-2 1024x1024, TT 4x8x8x4 rank 8, batch 100",
     lambda r: (make_dense(MNIST_TT8, 1024, 1024, rngs=r), make_dense({"kind": "dense"}, 1024, 1024, rngs=r)),
     (100, 1024)),
    ("FC-2 1024x1024, matrix rank 4, batch 100",
     lambda r: (make_dense({"kind": "lowrank", "rank": 4}, 1024, 1024, rngs=r),
                make_dense({"kind": "dense"}, 1024, 1024, rngs=r)),
     (100, 1024)),
    ("VGG FC6 25088x4096, TT4, batch 1",
     lambda r: (make_dense(FC6_TT4, 25088, 4096, rngs=r), make_dense({"kind": "dense"}, 25088, 4096, rngs=r)),
     (1, 25088)),
    ("VGG FC6 25088x4096, TT4, batch 128",
     lambda r: (make_dense(FC6_TT4, 25088, 4096, rngs=r), make_dense({"kind": "dense"}, 25088, 4096, rngs=r)),
     (128, 25088)),
    ("VGG-like conv 3x3 256->256, CP rank 64, 32x32 maps, batch 32",
     lambda r: (make_conv({"kind": "cp", "rank": 64}, 256, 256, 3, rngs=r),
                make_conv({"kind": "dense"}, 256, 256, 3, rngs=r)),
     (32, 32, 32, 256)),
]


def compile_pair(layer):
  """Jitted forward and forward+backward of a layer as functions of (params, x)."""
  graphdef, params = nnx.split(layer)
  forward = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))
  loss = lambda p, x: jnp.sum(nnx.merge(graphdef, p)(x) ** 2)
  backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
  return params, forward, backward


def run_case(name, build, input_shape, repeats):
  layer, dense = build(nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), input_shape, jnp.float32)
  row = {"case": name, "layer": layer.shape_description, "params": layer.num_params,
         "dense_params": dense.num_params}
  for label, module in (("dense", dense), ("layer", layer)):
    params, forward, backward = compile_pair(module)
    row[f"{label}_fwd"] = time_fn(forward, params, x, repeats=repeats)
    row[f"{label}_fwd_bwd"] = time_fn(backward, params, x, repeats=repeats)
  row["speedup_fwd"] = row["dense_fwd"]["median_ms"] / row["layer_fwd"]["median_ms"]
  row["speedup_fwd_bwd"] = row["dense_fwd_bwd"]["median_ms"] / row["layer_fwd_bwd"]["median_ms"]
  return row


def to_markdown(rows, machine):
  lines = [f"# Layer speed vs dense ({jax.default_backend()})", "", f"Machine: {machine}", "",
           "Median ms over repeats (float32, jit, warmed up). Speed-up = dense / layer.", "",
           "| case | params (layer / dense) | dense fwd | layer fwd | speed-up fwd | "
           "dense fwd+bwd | layer fwd+bwd | speed-up fwd+bwd |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    lines.append(
        f"| {r['case']} | {r['params']:,} / {r['dense_params']:,} | {r['dense_fwd']['median_ms']:.3f} | "
        f"{r['layer_fwd']['median_ms']:.3f} | {r['speedup_fwd']:.2f}x | "
        f"{r['dense_fwd_bwd']['median_ms']:.3f} | {r['layer_fwd_bwd']['median_ms']:.3f} | "
        f"{r['speedup_fwd_bwd']:.2f}x |")
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--filter", default="", help="only cases whose name contains this")
  parser.add_argument("--out", default=f"benchmarks/results/layers_{jax.default_backend()}")
  args = parser.parse_args()
  repeats = 5 if args.quick else 30
  machine = describe_machine()
  rows = []
  for name, build, shape in CASES:
    if args.filter in name:
      rows.append(run_case(name, build, shape, repeats))
      print(f"{name}: fwd {rows[-1]['speedup_fwd']:.2f}x, fwd+bwd {rows[-1]['speedup_fwd_bwd']:.2f}x",
            flush=True)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out + ".json", "w") as f:
    json.dump({"machine": machine, "rows": rows}, f, indent=1)
  markdown = to_markdown(rows, machine)
  with open(args.out + ".md", "w") as f:
    f.write(markdown)
  print(markdown)


if __name__ == "__main__":
  main()
