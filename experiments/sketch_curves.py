r"""Sketch compression curves (Kasiviswanathan et al. 2018) with Tucker/TT baselines.

  python -m tnjax.sweep --config configs/sketch_mnist.py:fashion_idx,epochs=10 --workdir runs/sketch
  python experiments/sketch_curves.py --workdir runs/sketch \
      --out experiments/results/sketch_fashion_mnist

Each run is labelled by the kinds of its compressed layers (sketch with its l, the
Tucker-2 + TT baseline, convs only, or dense). Compression is over the layers a
point compresses (of the config module's LAYER_DIMS), counted with the same closed
forms the config uses to match the baselines. Runs that differ only in the seed
are one row: mean and standard deviation.
"""

from __future__ import annotations

import argparse
import importlib


import report_lib

PAPER_NOTE = (
  "Paper (Kasiviswanathan, Narodytska & Jin 2018; PAPERS.md, recalled with low "
  "confidence): sketches compared with Tucker (convs) and Tucker + TT (convs and FC) at "
  "matched compression, in error-vs-compression curves with several l; no numbers to quote."
)
CONFIGS = {"lenet5": "tnjax.configs.sketch_mnist", "small_cnn": "tnjax.configs.sketch_cifar10"}


def method_of(layers: dict, dims: dict) -> str:
  """'sketch (l=2)', 'Tucker-2 + TT', 'sketch, convs only', 'Tucker-2, convs only' or 'dense'."""
  kinds = sorted({spec["kind"] for spec in layers.values()})
  if not kinds:
    return "dense"
  name = {("sketch",): "sketch", ("tt", "tucker"): "Tucker-2 + TT", ("tucker",): "Tucker-2"}.get(
    tuple(kinds), "+".join(kinds)
  )
  counts = {spec.get("num_sketches", 1) for spec in layers.values() if spec["kind"] == "sketch"}
  if counts and counts != {1}:
    name += f" (l={'/'.join(map(str, sorted(counts)))})"
  if len(layers) < len(dims) and all(dims[n][0] == "conv" for n in layers):
    name += ", convs only"
  return name


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--note", action="append", default=[], help="a line added to the notes")
  args = parser.parse_args()
  runs = report_lib.load_runs(args.workdir)
  from tnjax.configs import sketch_common  # pylint: disable=g-import-not-at-top

  rows = []
  for group in report_lib.seed_groups(runs):
    model = group[0]["config"]["model"]
    dims = importlib.import_module(CONFIGS[model["name"]]).LAYER_DIMS
    layers = model.get("layers") or {}
    compressed = {n: dims[n] for n in layers} or dims  # conv-only points: their layers
    weights = sketch_common.total_weight_params(compressed, layers)
    dense = sketch_common.total_weight_params(compressed, {})
    finished = [r["result"] for r in group if r["result"] is not None]
    rows.append(
      {
        "method": method_of(layers, dims),
        "weights": weights,
        "compression": dense / weights,
        "accuracies": report_lib.accuracies(group),
        "params": finished[0]["num_params"] if finished else None,
        "epoch_seconds": report_lib.median_epoch_seconds(group),
        "layers": ", ".join(
          f"{n}: {s['kind']} " + ",".join(f"{k}={v}" for k, v in s.items() if k != "kind")
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
      report_lib.percent_pm(r["accuracies"]),
      f"{r['params']:,}" if r["params"] else "missing",
      f"{r['epoch_seconds']:.1f}" if r["epoch_seconds"] else "-",
      r["layers"],
    ]
    for r in rows
  ]
  plt = report_lib.pyplot()
  figure, axis = plt.subplots(figsize=(6, 4))
  for method in dict.fromkeys(r["method"] for r in rows):
    points = sorted(
      (r["compression"], *(100 * v for v in report_lib.mean_std(r["accuracies"])))
      for r in rows
      if r["method"] == method and r["accuracies"]
    )
    if method == "dense":
      for _, acc, _ in points:
        axis.axhline(acc, color="gray", ls="--", label="dense")
    elif points:
      x, y, err = zip(*points)
      style = "o-" if method.startswith("sketch") else "s:"
      axis.errorbar(x, y, yerr=err, fmt=style, label=method, capsize=2)
  axis.set_xscale("log")
  axis.set_xlabel("compression of the compressed layers (log scale)")
  axis.set_ylabel("test accuracy (%)")
  axis.legend()
  notes = [report_lib.describe_setup(runs), PAPER_NOTE, *args.note]
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
  report_lib.run_main(main)
