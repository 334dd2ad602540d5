r"""Sketch compression curves (Kasiviswanathan et al. 2018) with Tucker/TT baselines.

  python -m tnjax.sweep --config configs/sketch_mnist.py:fashion_idx,epochs=10 --workdir runs/sketch
  python experiments/sketch_curves.py --workdir runs/sketch \
      --out experiments/results/sketch_fashion_mnist

Each run is labelled by the kinds of its compressible layers (sketch, or the
Tucker-2 + TT baseline, or dense). Compression is over the compressible layers
(config module's LAYER_DIMS), counted with the same closed forms the config uses
to match the baselines.
"""

from __future__ import annotations

import argparse
import importlib

import matplotlib.pyplot as plt

import report_lib

PAPER_NOTE = (
  "Paper (Kasiviswanathan, Narodytska & Jin 2018; PAPERS.md, recalled with low "
  "confidence): on MNIST and CIFAR-10 the sketched networks stay close to the dense "
  "accuracy at moderate compression and beat Tucker and TT at matched compression."
)
CONFIGS = {"lenet5": "tnjax.configs.sketch_mnist", "small_cnn": "tnjax.configs.sketch_cifar10"}


def method_of(layers: dict) -> str:
  kinds = sorted({spec["kind"] for spec in layers.values()})
  if not kinds:
    return "dense"
  return {("sketch",): "sketch", ("tt", "tucker"): "Tucker-2 + TT"}.get(
    tuple(kinds), "+".join(kinds)
  )


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", required=True)
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  runs = report_lib.load_runs(args.workdir)
  from tnjax.configs import sketch_common  # pylint: disable=g-import-not-at-top

  rows = []
  for run in runs:
    model = run["config"]["model"]
    dims = importlib.import_module(CONFIGS[model["name"]]).LAYER_DIMS
    layers = model.get("layers") or {}
    weights = sketch_common.total_weight_params(dims, layers)
    dense = sketch_common.total_weight_params(dims, {})
    result = run["result"]
    rows.append(
      {
        "method": method_of(layers),
        "weights": weights,
        "compression": dense / weights,
        "accuracy": result and result["test_accuracy"],
        "params": result and result["num_params"],
        "epoch_seconds": run["epoch_seconds"],
        "layers": ", ".join(
          f"{n}: {s['kind']} "
          + ",".join(f"{k}={v}" for k, v in s.items() if k not in ("kind", "num_sketches"))
          for n, s in sorted(layers.items())
        )
        or "all dense",
      }
    )
  rows.sort(key=lambda r: (r["method"] == "dense", r["method"], -r["compression"]))
  header = [
    "method",
    "compressed-layer weights",
    "compression",
    "test acc",
    "total params",
    "s / epoch",
    "layers",
  ]
  table = [
    [
      r["method"],
      f"{r['weights']:,}",
      f"{r['compression']:.1f}x",
      report_lib.percent(r["accuracy"]),
      f"{r['params']:,}" if r["params"] else "missing",
      f"{r['epoch_seconds']:.1f}" if r["epoch_seconds"] else "-",
      r["layers"],
    ]
    for r in rows
  ]
  figure, axis = plt.subplots(figsize=(6, 4))
  for method in dict.fromkeys(r["method"] for r in rows):
    points = sorted(
      (r["compression"], 100 * r["accuracy"])
      for r in rows
      if r["method"] == method and r["accuracy"] is not None
    )
    if method == "dense":
      for _, acc in points:
        axis.axhline(acc, color="gray", ls="--", label="dense")
    elif points:
      axis.plot(*zip(*points), "o-" if method == "sketch" else "s:", label=method)
  axis.set_xscale("log")
  axis.set_xlabel("compression of the compressed layers (log scale)")
  axis.set_ylabel("test accuracy (%)")
  axis.legend()
  notes = [report_lib.describe_setup(runs), PAPER_NOTE]
  for path in report_lib.write_outputs(
    args.out,
    "Tensor sketching vs Tucker-2 / TT at matched parameter counts",
    notes,
    header,
    table,
    figure,
  ):
    print(path)


if __name__ == "__main__":
  main()
