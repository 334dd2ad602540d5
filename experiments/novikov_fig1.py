r"""Novikov et al. (2015) Figure 1: test error vs first-layer parameters of FC-2.

  python experiments/novikov_fig1.py --workdir runs/fig1_tt --workdir runs/fig1_mr \
      --workdir runs/fig1_dense --out experiments/results/novikov_fig1_fashion_mnist

One curve per TT shape (config.model.hidden_layer.in_shape) and one for the
matrix-rank baseline; the dense layer as a horizontal line. First-layer
parameters are the hidden layer's weights (no bias), counted by building the
layer from the run's spec with tnjax (so TT ranks clipped at the boundary count
as stored).
"""

from __future__ import annotations

import argparse
import warnings

import matplotlib.pyplot as plt
from flax import nnx

import report_lib
from tnjax.nn import make_dense

# Paper (MNIST, PAPERS.md section 1): TT 4x8x8x4 reaches ~1.9-2% error at rank 8,
# comparable to the dense layer's ~1.9% with ~100x fewer first-layer weights.
PAPER_NOTE = (
  "Paper (Novikov et al. 2015, MNIST): TT-layers at ranks 4-8 reach about 2% test error, "
  "the dense FC-2's level (~1.9%), with 2-3 orders of magnitude fewer first-layer "
  "weights; matrix-rank layers need far more weights for the same error."
)


def first_layer_weights(config) -> int:
  model = config["model"]
  pad = config["data"]["pad_to"]  # grayscale MNIST-format images, 28x28 unless padded
  in_features = pad * pad if pad else 28 * 28
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    layer = nnx.eval_shape(
      lambda: make_dense(
        report_lib.hidden_layer(model), in_features, model["hidden_features"], rngs=nnx.Rngs(0)
      )
    )
  return layer.weight_params


def curve_name(layer) -> str:
  if layer["kind"] == "tt":
    return "TT " + "x".join(map(str, layer["in_shape"])) if layer.get("in_shape") else "TT (auto)"
  return {"lowrank": "matrix rank", "dense": "dense"}.get(layer["kind"], layer["kind"])


def rank_of(layer):
  return layer.get("ranks", layer.get("rank", "-"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", required=True)
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  runs = report_lib.load_runs(args.workdir)
  rows = []
  for run in runs:
    layer = report_lib.hidden_layer(run["config"]["model"])
    result = run["result"]
    rows.append(
      {
        "curve": curve_name(layer),
        "rank": rank_of(layer),
        "weights": first_layer_weights(run["config"]),
        "error": None if result is None else 1 - result["test_accuracy"],
        "params": None if result is None else result["num_params"],
        "epoch_seconds": run["epoch_seconds"],
      }
    )
  rows.sort(key=lambda r: (r["curve"] == "dense", r["curve"], r["weights"]))
  header = ["first layer", "rank", "first-layer weights", "test error", "total params", "s / epoch"]
  table = [
    [
      r["curve"],
      r["rank"],
      f"{r['weights']:,}",
      report_lib.percent(r["error"]),
      f"{r['params']:,}" if r["params"] else "missing",
      f"{r['epoch_seconds']:.1f}" if r["epoch_seconds"] else "-",
    ]
    for r in rows
  ]
  figure, axis = plt.subplots(figsize=(6, 4))
  for name in dict.fromkeys(r["curve"] for r in rows):
    points = [
      (r["weights"], 100 * r["error"])
      for r in rows
      if r["curve"] == name and r["error"] is not None
    ]
    if name == "dense":
      for _, error in points:
        axis.axhline(error, color="gray", ls="--", label=f"dense ({rows[-1]['weights']:,} weights)")
      continue
    axis.plot(*zip(*points), "o-" if name.startswith("TT") else "s:", label=name)
  axis.set_xscale("log")
  axis.set_xlabel("first-layer weights (log scale)")
  axis.set_ylabel("test error (%)")
  axis.legend(fontsize=8)
  notes = [report_lib.describe_setup(runs), PAPER_NOTE]
  for path in report_lib.write_outputs(
    args.out,
    "Novikov et al. Figure 1: test error vs first-layer parameters (FC-2)",
    notes,
    header,
    table,
    figure,
  ):
    print(path)


if __name__ == "__main__":
  main()
