r"""CPAC-Conv rank table (Wang, Guo & Yue 2021) from a cpac_mnist sweep and a dense run.

  python experiments/cpac_rank_table.py --workdir runs/cpac --workdir runs/cpac_dense \
      --out experiments/results/cpac_rank_fashion_mnist

Rows: each CP rank R (the CPAC layer kind in config.json) and the dense-conv CNN;
columns: test accuracy, parameters, conv compression, seconds per training epoch,
and the paper's MNIST accuracy for the same R (a different dataset when ours is
Fashion-MNIST: compare the trend, not the numbers).
"""

from __future__ import annotations

import argparse

import matplotlib.pyplot as plt

import report_lib

PAPER_MNIST = {
  "dense": 0.9844,
  1: 0.9278,
  2: 0.9679,
  3: 0.9774,
  5: 0.9805,
  9: 0.9830,
  10: 0.9833,
  12: 0.9842,
}  # PAPERS.md section 3, N = 8


def conv_weights(config) -> tuple[int, int]:
  """(CPAC conv weights, dense conv weights) of the two 3x3 convs of the network."""
  channels, in_channels = config["model"]["channels"], 1
  dense = 9 * in_channels * channels + 9 * channels * channels
  layer = config["model"]["conv_layer"]
  if layer["kind"] != "cp":
    return dense, dense
  rank = layer["rank"]
  return rank * (channels + 3 + 3 + in_channels) + rank * (channels + 3 + 3 + channels), dense


def rows_from_runs(runs):
  rows = []
  for run in runs:
    config, result = run["config"], run["result"]
    layer = config["model"]["conv_layer"]
    key = layer["rank"] if layer["kind"] == "cp" else "dense"
    ours, dense = conv_weights(config)
    rows.append(
      {
        "key": key,
        "label": f"CPAC R={key}" if key != "dense" else "dense conv (no bias)",
        "accuracy": result and result["test_accuracy"],
        "params": result and result["num_params"],
        "conv_weights": ours,
        "compression": dense / ours,
        "epoch_seconds": run["epoch_seconds"],
        "paper": PAPER_MNIST.get(key),
      }
    )
  return sorted(rows, key=lambda r: (r["key"] == "dense", r["key"] if r["key"] != "dense" else 0))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", required=True)
  parser.add_argument("--out", required=True, help="output prefix (writes .md, .csv, .png)")
  args = parser.parse_args()
  runs = report_lib.load_runs(args.workdir)
  rows = rows_from_runs(runs)
  header = [
    "network",
    "test acc",
    "params (total)",
    "conv weights",
    "conv compression",
    "s / epoch",
    "paper (MNIST)",
  ]
  table = [
    [
      r["label"],
      report_lib.percent(r["accuracy"]),
      f"{r['params']:,}" if r["params"] else "missing",
      f"{r['conv_weights']:,}",
      f"{r['compression']:.1f}x",
      f"{r['epoch_seconds']:.1f}" if r["epoch_seconds"] else "-",
      report_lib.percent(r["paper"]) if r["paper"] else "-",
    ]
    for r in rows
  ]
  cp_rows = [r for r in rows if r["key"] != "dense" and r["accuracy"] is not None]
  figure, axis = plt.subplots(figsize=(5, 3.5))
  axis.plot(
    [r["key"] for r in cp_rows], [100 * r["accuracy"] for r in cp_rows], "o-", label="CPAC (ours)"
  )
  for r in rows:
    if r["key"] == "dense" and r["accuracy"] is not None:
      axis.axhline(100 * r["accuracy"], color="gray", ls="--", label="dense conv (ours)")
  paper = sorted((k, v) for k, v in PAPER_MNIST.items() if k != "dense")
  axis.plot([k for k, _ in paper], [100 * v for _, v in paper], "s:", label="paper (MNIST)")
  axis.set_xlabel("CP rank R")
  axis.set_ylabel("test accuracy (%)")
  axis.legend()
  notes = [
    report_lib.describe_setup(runs),
    "Paper: Wang, Guo & Yue 2021, MNIST, N = 8, Adam 1e-4, batch 1 (PAPERS.md). Ours uses "
    "the config's `fast` variant (batch 64, Adam 3e-3) unless the config says otherwise.",
  ]
  for path in report_lib.write_outputs(
    args.out, "CPAC-Conv rank sweep", notes, header, table, figure
  ):
    print(path)


if __name__ == "__main__":
  main()
