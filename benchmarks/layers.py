r"""Speed of the papers' compressed layers against their dense twins, same machine, same run.

  python -m benchmarks.layers                       # every config's layers -> benchmarks/results/layers_<backend>.{md,json}
  python -m benchmarks.layers --quick               # fewer repeats, a smoke run
  python -m benchmarks.layers --filter cpac         # only configs whose name contains cpac
  python -m benchmarks.layers --anchors             # the TensorLy-Torch comparison shapes instead
  python -m benchmarks.layers --btt                 # Block Tensor-Train at transformer sizes
  python -m benchmarks.layers --dtype bfloat16      # bf16 compute (float32 parameters)

The layers come from the configs themselves (benchmarks/paper_points.py): each
compressed layer at the input shape it sees in training (the config's batch
size), with the execution path tnjax.tensor.execution chooses there. For each:
forward, and forward+backward (gradients of sum(y**2) w.r.t. the layer's
parameters and its input), jit-compiled, warmed up; layer and dense twin are
timed in turn, round after round, and the median (with quartiles and min) is
reported. Speed-up = dense time / layer time (> 1: the layer is faster).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Callable


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
from tnjax.nn import make_conv, make_dense

DENSE = {"kind": "dense"}
MNIST_TT8 = {"kind": "tt", "ranks": 8, "in_shape": (4, 8, 8, 4), "out_shape": (4, 8, 8, 4)}
FC6_TT4 = {"kind": "tt", "ranks": 4, "in_shape": (2, 7, 8, 8, 7, 4), "out_shape": (4,) * 6}


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  build: Callable[[nnx.Rngs], tuple[nnx.Module, nnx.Module]]  # rngs -> (layer, dense baseline)
  input_shape: tuple[int, ...]


def paper_cases(name_filter: str = "") -> list[Case]:
  """One Case per compressed layer of the configs (at its training input shape)."""
  cases = []
  for point in paper_points.all_layer_points(name_filter):
    cases.append(
      Case(
        f"{point.name} (batch {point.input.shape[0]})",
        lambda rngs, p=point: (p.layer, p.dense_twin(rngs)),
        tuple(point.input.shape),
      )
    )
  return cases


def dense_pair(spec, in_features, out_features):
  return lambda rngs: (
    make_dense(spec, in_features, out_features, rngs=rngs),
    make_dense(DENSE, in_features, out_features, rngs=rngs),
  )


def conv_pair(spec, in_channels, out_channels, kernel_size):
  return lambda rngs: (
    make_conv(spec, in_channels, out_channels, kernel_size, rngs=rngs),
    make_conv(DENSE, in_channels, out_channels, kernel_size, rngs=rngs),
  )


# Shapes where TensorLy-Torch has the same layer (benchmarks/anchors compares them).
ANCHOR_CASES = [
  Case(
    "FC 1024x1024, TT 4x8x8x4 rank 8 (Novikov MNIST), batch 100",
    dense_pair(MNIST_TT8, 1024, 1024),
    (100, 1024),
  ),
  Case(
    "FC 1024x1024, matrix rank 4 (~same params as TT), batch 100",
    dense_pair({"kind": "lowrank", "rank": 4}, 1024, 1024),
    (100, 1024),
  ),
  Case(
    "FC 1024x1024, TT 4x8x8x4 rank 8, batch 1000", dense_pair(MNIST_TT8, 1024, 1024), (1000, 1024)
  ),
  Case(
    "VGG FC6 25088x4096, TT (2,7,8,8,7,4)x(4,)*6 rank 4, batch 1",
    dense_pair(FC6_TT4, 25088, 4096),
    (1, 25088),
  ),
  Case(
    "VGG FC6 25088x4096, TT (2,7,8,8,7,4)x(4,)*6 rank 4, batch 128",
    dense_pair(FC6_TT4, 25088, 4096),
    (128, 25088),
  ),
  Case(
    "VGG-like conv 3x3 256->256, CP rank 64, 32x32 maps, batch 32",
    conv_pair({"kind": "cp", "rank": 64}, 256, 256, 3),
    (32, 32, 32, 256),
  ),
  # Sketch and Tucker-2 at about CP rank 64's weight count (33k of the dense 590k).
  Case(
    "VGG-like conv 3x3 256->256, sketch l=1 k=7, 32x32 maps, batch 32",
    conv_pair({"kind": "sketch", "sketch_size": 7, "num_sketches": 1}, 256, 256, 3),
    (32, 32, 32, 256),
  ),
  Case(
    "VGG-like conv 3x3 256->256, TT 4x8x8 rank 20, 32x32 maps, batch 32",
    conv_pair(
      {"kind": "tt", "ranks": 20, "in_shape": (4, 8, 8), "out_shape": (4, 8, 8)}, 256, 256, 3
    ),
    (32, 32, 32, 256),
  ),
  Case(
    "VGG-like conv 3x3 256->256, Tucker-2 ranks 38-38, 32x32 maps, batch 32",
    conv_pair({"kind": "tucker", "in_rank": 38, "out_rank": 38}, 256, 256, 3),
    (32, 32, 32, 256),
  ),
]


# Block Tensor-Train (Qiu et al. 2024) at transformer sizes, with low rank at its weights.
# The paper's balanced modes (64x64: 4,096 blocks of 64x64 at rank 4) make small GEMMs;
# few large blocks (8x512 -> 512x8: 64 blocks of 512x512 at rank 32) store as many weights.
BTT_CASES = [
  Case(f"FC 4096x4096, {name}, 8192 tokens", dense_pair(spec, 4096, 4096), (8192, 4096))
  for name, spec in (
    ("BTT 64x64 rank 4, balanced (8x fewer weights)", {"kind": "btt", "rank": 4}),
    (
      "BTT 16x256 -> 256x16 rank 16 (8x fewer)",
      {"kind": "btt", "rank": 16, "in_shape": (16, 256), "out_shape": (256, 16)},
    ),
    (
      "BTT 8x512 -> 512x8 rank 32 (8x fewer)",
      {"kind": "btt", "rank": 32, "in_shape": (8, 512), "out_shape": (512, 8)},
    ),
    ("matrix rank 256 (8x fewer, as BTT above)", {"kind": "lowrank", "rank": 256}),
  )
] + [
  Case(
    "ViT-S MLP 384x1536, BTT 8x48 -> 192x8 rank 4 (9.6x fewer weights), 8192 tokens",
    dense_pair({"kind": "btt", "rank": 4, "in_shape": (8, 48), "out_shape": (192, 8)}, 384, 1536),
    (8192, 384),
  ),
]


def jitted_calls(module):
  """Jitted forward and forward+backward of a module, as functions of (params, x).

  params is the flat list of the module's arrays, as the trainer passes its state
  (tnjax.training.step): jit walking an nnx.State costs some microseconds per array in
  Python, which at sub-millisecond layers would be counted against the layer with more
  arrays (a CP conv's four factors against a kernel and a bias)."""
  graphdef, state = nnx.split(module)
  params, treedef = jax.tree.flatten(state)
  merged = lambda p: nnx.merge(graphdef, jax.tree.unflatten(treedef, p))  # noqa: E731
  forward = jax.jit(lambda p, x: merged(p)(x))
  loss = lambda p, x: jnp.sum(merged(p)(x) ** 2)
  forward_backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
  return params, forward, forward_backward


def run_case(case: Case, dtype=None, **timing) -> dict:
  layer, dense = case.build(nnx.Rngs(0))
  if dtype is not None:  # the compute dtype of both layers, however the case built them
    layer.dtype = dense.dtype = jnp.dtype(dtype)
  x = jax.random.normal(jax.random.key(1), case.input_shape, jnp.float32)
  calls = {}
  for label, module in (("dense", dense), ("layer", layer)):
    params, forward, forward_backward = jitted_calls(module)
    calls[f"{label}_fwd"] = lambda f=forward, p=params: f(p, x)
    calls[f"{label}_fwd_bwd"] = lambda f=forward_backward, p=params: f(p, x)
  row = {
    "case": case.name,
    "layer": f"{type(layer).__name__} {layer.shape_description}",
    "input_shape": list(case.input_shape),
    "params": layer.num_params,
    "dense_params": dense.num_params,
    "path": layer.execution_path(case.input_shape, jnp.dtype(dtype or jnp.float32)),
    "dtype": str(jnp.dtype(dtype or jnp.float32)),
  }
  row.update(time_interleaved(calls, **timing))
  for mode in ("fwd", "fwd_bwd"):
    row[f"speedup_{mode}"] = row[f"dense_{mode}"]["median_ms"] / row[f"layer_{mode}"]["median_ms"]
  return row


def to_markdown(rows, machine, command) -> str:
  lines = [
    *report_header("Layer speed vs dense", machine, command),
    "Milliseconds per call: median (interquartile range; '!' where it exceeds 10% of the",
    "median after the round limit) over the repeats, which go on until every call's",
    "interquartile range is within 10% of its median or the time limit; float32, jit,",
    "warmed up; dense and layer timed in turn in the same run. fwd+bwd = gradients of",
    "sum(y**2) w.r.t. parameters and input. Speed-up = dense median / layer median.",
    "Path: how tnjax.tensor.execution runs the layer at this shape (factored chain, or the",
    "weight rebuilt and one GEMM / conv).",
    "",
    "| case | layer | path | params (layer / dense) | dense fwd | layer fwd | speed-up fwd | "
    "dense fwd+bwd | layer fwd+bwd | speed-up fwd+bwd | repeats |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    lines.append(
      f"| {r['case']} | {r['layer']} | {r['path']} | {r['params']:,} / {r['dense_params']:,} | "
      f"{ms_cell(r['dense_fwd'])} | {ms_cell(r['layer_fwd'])} | **{r['speedup_fwd']:.2f}x** | "
      f"{ms_cell(r['dense_fwd_bwd'])} | {ms_cell(r['layer_fwd_bwd'])} | **{r['speedup_fwd_bwd']:.2f}x** | "
      f"{r['layer_fwd']['repeats']} |"
    )
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="few repeats (a smoke run)")
  parser.add_argument("--filter", default="", help="only configs (cases) whose name contains this")
  parser.add_argument("--anchors", action="store_true", help="the TensorLy-Torch comparison shapes")
  parser.add_argument("--btt", action="store_true", help="Block Tensor-Train at transformer sizes")
  parser.add_argument("--dtype", default=None, help="compute dtype, e.g. bfloat16")
  parser.add_argument(
    "--out",
    default=None,
    help="results path; .md and .json are both written",
  )
  args = parser.parse_args()
  # Fast cases get more rounds (noise on a shared CPU), slow ones fewer.
  timing = (
    dict(repeats=7, min_repeats=5, max_seconds=8.0)
    if args.quick
    else dict(repeats=30, min_seconds=10.0, max_seconds=40.0, max_spread=0.10)
  )
  if args.out is None:
    kind = "anchors" if args.anchors else "btt" if args.btt else "layers"
    suffix = f"_{args.dtype}" if args.dtype else ""
    args.out = f"benchmarks/results/{kind}_{jax.default_backend()}{suffix}.md"
  machine = describe_machine()
  command = "python -m benchmarks.layers " + " ".join(sys.argv[1:])
  rows = []
  if args.anchors or args.btt:
    cases = [c for c in (ANCHOR_CASES if args.anchors else BTT_CASES) if args.filter in c.name]
  else:
    cases = paper_cases(args.filter)
  for case in cases:
    rows.append(run_case(case, args.dtype, **timing))
    print(
      f"{case.name} [{rows[-1]['path']}]: fwd {rows[-1]['speedup_fwd']:.2f}x, "
      f"fwd+bwd {rows[-1]['speedup_fwd_bwd']:.2f}x",
      flush=True,
    )
  record_end_load(machine)
  stem = os.path.splitext(args.out)[0] if args.out.endswith((".md", ".json")) else args.out
  markdown = to_markdown(rows, machine, command)
  write_results(stem + ".md", markdown, {"machine": machine, "command": command, "rows": rows})
  print(markdown)


if __name__ == "__main__":
  main()
