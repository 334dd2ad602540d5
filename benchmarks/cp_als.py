r"""CP-ALS: tnjax's `cp_als` against TensorLy's `parafac`, same tensor, rank, init and sweeps.

  pip install tensorly   # the comparison only; tnjax does not depend on it
  python -m benchmarks.cp_als [--sweeps 20] [--out benchmarks/results/cp_als_cpu.md]

Both run on the host in float64 NumPy from an SVD start, for exactly `--sweeps`
sweeps (tol 0: no early stop), timed in turn (benchmarks.common.time_interleaved).
The relative errors they reach are listed beside the times, so a faster run that
fits worse would show.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import describe_machine, machine_line, time_interleaved, write_results
from tnjax.tensor import cp

CASES = [  # (shape, rank): small tensors, 16^4, a 3x3 256 -> 256 conv kernel, and the
  # own-model CNN's 3136 -> 256 linear1 at 4x fewer weights (pair modes 28x32x32x28)
  ((8, 3, 3, 8), 4),
  ((64, 3, 3, 64), 16),
  ((16, 16, 16, 16), 8),
  ((16, 16, 16, 16), 16),
  ((256, 3, 3, 256), 32),
  ((28, 32, 32, 28), 1672),
]


def _tensorly_parafac(tensor, rank, sweeps):
  import tensorly  # pylint: disable=g-import-not-at-top
  from tensorly.decomposition import parafac  # pylint: disable=g-import-not-at-top

  tensorly.set_backend("numpy")
  cp_tensor = parafac(tensor, rank, n_iter_max=sweeps, init="svd", tol=0.0)
  rebuilt = tensorly.cp_to_tensor(cp_tensor)
  return np.linalg.norm(rebuilt - tensor) / np.linalg.norm(tensor)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sweeps", type=int, default=20)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--out", default="benchmarks/results/cp_als_cpu.md")
  args = parser.parse_args()
  machine = describe_machine()
  rows = []
  for shape, rank in CASES:
    tensor = np.random.default_rng(0).normal(size=shape)
    calls = {
      "tnjax": lambda: cp.cp_als(tensor, rank, n_iter=args.sweeps, tol=0.0),
      "tensorly": lambda: _tensorly_parafac(tensor, rank, args.sweeps),
    }
    times = time_interleaved(calls, repeats=args.repeats, min_repeats=3, max_seconds=60)
    ours = float(calls["tnjax"]()[1])
    theirs = float(calls["tensorly"]())
    ratio = times["tensorly"]["median_ms"] / times["tnjax"]["median_ms"]
    rows.append(
      {
        "shape": shape,
        "rank": rank,
        "tnjax_ms": times["tnjax"]["median_ms"],
        "tensorly_ms": times["tensorly"]["median_ms"],
        "speedup": ratio,
        "tnjax_error": ours,
        "tensorly_error": theirs,
      }
    )
    print(rows[-1], flush=True)
  lines = [
    "# CP-ALS: tnjax `cp_als` vs TensorLy `parafac`",
    "",
    f"Command: `python -m benchmarks.cp_als --sweeps {args.sweeps}`. Machine: "
    f"{machine_line(machine)}. TensorLy {__import__('tensorly').__version__}. "
    f"{args.sweeps} sweeps each from an SVD start, float64, median of interleaved runs.",
    "",
    "| tensor | rank | tnjax ms | TensorLy ms | TensorLy / tnjax | tnjax error | TensorLy error |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    lines.append(
      f"| {'x'.join(map(str, r['shape']))} | {r['rank']} | {r['tnjax_ms']:.1f} | "
      f"{r['tensorly_ms']:.1f} | **{r['speedup']:.2f}x** | {r['tnjax_error']:.4f} | "
      f"{r['tensorly_error']:.4f} |"
    )
  write_results(
    args.out, "\n".join(lines) + "\n", {"machine": machine, "sweeps": args.sweeps, "rows": rows}
  )
  print(args.out)


if __name__ == "__main__":
  main()
