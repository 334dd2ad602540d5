r"""TensorLy-Torch's layers at tnjax's anchor shapes (run from its own virtual environment).

  python3 -m venv /tmp/anchors-venv
  /tmp/anchors-venv/bin/pip install torch tensorly tensorly-torch packaging  # tensorly needs it, undeclared
  /tmp/anchors-venv/bin/python benchmarks/anchors/tensorly_torch.py \
      --out benchmarks/results/anchors_tensorly_torch_cpu.json
  python -m benchmarks.layers --anchors            # tnjax at the same shapes, same machine
  python -m benchmarks.anchors.compare             # -> benchmarks/results/anchors_comparison_cpu.md

torch is never a tnjax dependency: this file imports only torch, tltorch and the
standard library. Case names equal those of `benchmarks.layers.ANCHOR_CASES`, so
the comparison joins on them. Timing as in tnjax's benchmarks: forward, and
forward+backward (gradients of sum(y**2) w.r.t. the parameters and the input),
after two warm-up calls, median over the rounds; float32, all CPU threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import tltorch


def tt_linear(in_modes, out_modes, rank):
  return lambda: tltorch.FactorizedLinear(
    in_tensorized_features=in_modes,
    out_tensorized_features=out_modes,
    factorization="blocktt",
    rank=rank,
    implementation="factorized",
    bias=True,
  )


def factorized_conv(factorization, rank):
  return lambda: tltorch.FactorizedConv(
    256,
    256,
    3,
    order=2,
    padding=1,
    factorization=factorization,
    rank=rank,
    implementation="factorized",
  )


# name (as in benchmarks.layers.ANCHOR_CASES) -> (layer factory, input shape in torch's layout)
CASES = {
  "FC 1024x1024, TT 4x8x8x4 rank 8 (Novikov MNIST), batch 100": (
    tt_linear((4, 8, 8, 4), (4, 8, 8, 4), 8),
    (100, 1024),
  ),
  "VGG FC6 25088x4096, TT (2,7,8,8,7,4)x(4,)*6 rank 4, batch 128": (
    tt_linear((2, 7, 8, 8, 7, 4), (4,) * 6, 4),
    (128, 25088),
  ),
  "VGG-like conv 3x3 256->256, CP rank 64, 32x32 maps, batch 32": (
    factorized_conv("cp", 64),
    (32, 256, 32, 32),
  ),
  # Tucker on all four kernel modes with full spatial ranks: tnjax's Tucker-2 (38, 38).
  "VGG-like conv 3x3 256->256, Tucker-2 ranks 38-38, 32x32 maps, batch 32": (
    factorized_conv("tucker", (38, 38, 3, 3)),
    (32, 256, 32, 32),
  ),
}


def timed(call, rounds, max_seconds):
  call()
  call()
  times, start = [], time.perf_counter()
  for i in range(rounds):
    t0 = time.perf_counter()
    call()
    times.append(time.perf_counter() - t0)
    if i >= 3 and time.perf_counter() - start > max_seconds:
      break
  ms = [t * 1e3 for t in times]
  return {"median_ms": statistics.median(ms), "min_ms": min(ms), "repeats": len(ms)}


def run(name, factory, shape, rounds, max_seconds):
  torch.manual_seed(0)
  layer = factory()
  x = torch.randn(shape, requires_grad=True)
  params = [p for p in layer.parameters()]

  def forward():
    with torch.no_grad():
      layer(x)

  def forward_backward():
    grads = torch.autograd.grad((layer(x) ** 2).sum(), params + [x])
    return grads

  return {
    "case": name,
    "layer": repr(layer).splitlines()[0][:120],
    "params": sum(p.numel() for p in params),
    "fwd": timed(forward, rounds, max_seconds),
    "fwd_bwd": timed(forward_backward, rounds, max_seconds),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default="benchmarks/results/anchors_tensorly_torch_cpu.json")
  parser.add_argument("--rounds", type=int, default=20)
  parser.add_argument("--max_seconds", type=float, default=40.0)
  args = parser.parse_args()
  machine = {
    "cpu": platform.processor() or platform.machine(),
    "threads": torch.get_num_threads(),
    "torch": torch.__version__,
    "tltorch": getattr(tltorch, "__version__", "?"),
    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "load_average": list(os.getloadavg()),
  }
  rows = []
  for name, (factory, shape) in CASES.items():
    rows.append(run(name, factory, shape, args.rounds, args.max_seconds))
    print(name, rows[-1]["fwd"]["median_ms"], rows[-1]["fwd_bwd"]["median_ms"], flush=True)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump({"machine": machine, "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
