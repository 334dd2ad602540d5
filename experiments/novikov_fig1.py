r"""Novikov et al. (2015) Figure 1: test error vs first-layer parameters of FC-2.

  python experiments/novikov_fig1.py --workdir runs/fig1_tt --workdir runs/fig1_mr \
      --workdir runs/fig1_dense --out experiments/results/novikov_fig1_fashion_mnist

One curve per TT shape (config.model.layers.hidden.in_shape) and one for the
matrix-rank baseline; the dense layer as a horizontal line; runs with both
layers TT (the HashedNet comparison) as their own points. Runs that differ only
in config.seed are one point: mean and standard deviation over the seeds. First-layer
parameters are the hidden layer's weights (no bias), counted by building the
layer from the run's spec with tnjax (so TT ranks clipped at the boundary count
as stored).
"""

from __future__ import annotations

import argparse
import warnings

from flax import nnx

import report_lib
from tnjax.nn import make_dense

# Paper (MNIST, PAPERS.md section 1): TT 4x8x8x4 reaches ~1.9-2% error at rank 8,
# comparable to the dense layer's ~1.9% with ~100x fewer first-layer weights.
PAPER_NOTE = (
  "Paper (Novikov et al. 2015, MNIST): TT-layers at ranks 4-8 reach about 2% test error, "
  "the dense FC-2's level (~1.9%), with 2-3 orders of magnitude fewer first-layer "
  "weights; matrix-rank layers need far more weights for the same error. Both layers as "
  "TT (the HashedNet comparison, recalled): 1.6% error with 12,602 parameters (rank 8), "
  "1.9% with 7,698 (rank 6)."
)


def _weights(spec, in_features, out_features) -> int:
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    layer = nnx.eval_shape(lambda: make_dense(spec, in_features, out_features, rngs=nnx.Rngs(0)))
  return layer.weight_params


def first_layer_weights(config) -> int:
  """The hidden layer's weights; with both layers TT (the HashedNet point), both layers'."""
  model = config["model"]
  pad = config["data"]["pad_to"]  # grayscale MNIST-format images, 28x28 unless padded
  in_features = pad * pad if pad else 28 * 28
  count = _weights(report_lib.hidden_layer(model), in_features, model["hidden_features"])
  output = model.get("layers", {}).get("output")
  if output is not None and output["kind"] != "dense":
    count += _weights(output, model["hidden_features"], 10)
  return count


def curve_name(layer, model=None) -> str:
  output = (model or {}).get("layers", {}).get("output")
  if output is not None and output["kind"] == "tt":
    return "TT both layers (HashedNet comparison; both layers' weights)"
  if layer["kind"] == "tt":
    return "TT " + "x".join(map(str, layer["in_shape"])) if layer.get("in_shape") else "TT (auto)"
  return {"lowrank": "matrix rank", "dense": "dense"}.get(layer["kind"], layer["kind"])


def rank_of(layer):
  return layer.get("ranks", layer.get("rank", "-"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--note", action="append", default=[], help="a line for the notes")
  args = parser.parse_args()
  runs = report_lib.load_runs(args.workdir)
  rows = []
  for group in report_lib.seed_groups(runs):
    config = group[0]["config"]
    layer = report_lib.hidden_layer(config["model"])
    errors = [1 - a for a in report_lib.accuracies(group)]
    finished = [r["result"] for r in group if r["result"] is not None]
    rows.append(
      {
        "curve": curve_name(layer, config["model"]),
        "rank": rank_of(layer),
        "weights": first_layer_weights(config),
        "errors": errors,
        "params": finished[0]["num_params"] if finished else None,
        "epoch_seconds": report_lib.median_epoch_seconds(group),
      }
    )
  rows.sort(key=lambda r: (r["curve"] == "dense", r["curve"], r["weights"]))
  header = ["first layer", "rank", "first-layer weights", "test error", "total params", "s / epoch"]
  table = [
    [
      r["curve"],
      r["rank"],
      f"{r['weights']:,}",
      report_lib.percent_pm(r["errors"]),
      f"{r['params']:,}" if r["params"] else "missing",
      f"{r['epoch_seconds']:.1f}" if r["epoch_seconds"] else "-",
    ]
    for r in rows
  ]
  plt = report_lib.pyplot()
  figure, axis = plt.subplots(figsize=(6, 4))
  for name in dict.fromkeys(r["curve"] for r in rows):
    points = [
      (r["weights"], *(100 * v for v in report_lib.mean_std(r["errors"])))
      for r in rows
      if r["curve"] == name and r["errors"]
    ]
    if name == "dense":
      for _, error, _ in points:
        axis.axhline(error, color="gray", ls="--", label=f"dense ({rows[-1]['weights']:,} weights)")
      continue
    x, y, err = zip(*points)
    axis.errorbar(
      x, y, yerr=err, fmt="o-" if name.startswith("TT") else "s:", label=name, capsize=2
    )
  axis.set_xscale("log")
  axis.set_xlabel("first-layer weights (log scale)")
  axis.set_ylabel("test error (%)")
  axis.legend(fontsize=8)
  notes = [report_lib.describe_setup(runs), PAPER_NOTE, *args.note]
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
  report_lib.run_main(main)
