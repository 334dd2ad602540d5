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
# The paper's second sweep, one conv layer, R = 1..6: the sources give only the CNN's accuracy.
PAPER_MNIST_SINGLE_CONV = {"dense": 0.9794}


def is_single_conv(config) -> bool:
  return config["model"].get("convs", 2) == 1


def conv_weights(config) -> tuple[int, int]:
  """(CPAC conv weights, dense conv weights) of the network's 3x3 convs (two, or one with
  the single-conv variant)."""
  channels, in_channels = config["model"]["channels"], 1
  two = config["model"].get("convs", 2) == 2
  dense = 9 * in_channels * channels + two * 9 * channels * channels
  layer = config["model"]["conv_layer"]
  if layer["kind"] != "cp":
    return dense, dense
  rank = layer["rank"]
  return rank * (channels + 3 + 3 + in_channels) + two * rank * (channels + 3 + 3 + channels), dense


def rows_from_runs(runs):
  """One row per network, mean and spread over its seeds, last and best epoch."""
  rows = []
  for group in report_lib.seed_groups(runs):
    config = group[0]["config"]
    finished = [r["result"] for r in group if r["result"] is not None]
    layer = config["model"]["conv_layer"]
    key = layer["rank"] if layer["kind"] == "cp" else "dense"
    ours, dense = conv_weights(config)
    rows.append(
      {
        "key": key,
        "label": f"CPAC R={key}" if key != "dense" else "dense conv (no bias)",
        "accuracies": [r["test_accuracy"] for r in finished],
        "best": [r.get("best_test_accuracy", r["test_accuracy"]) for r in finished],
        "params": finished[0]["num_params"] if finished else None,
        "conv_weights": ours,
        "compression": dense / ours,
        "epoch_seconds": report_lib.median_epoch_seconds(group),
        "paper": (PAPER_MNIST_SINGLE_CONV if is_single_conv(config) else PAPER_MNIST).get(key),
      }
    )
  return sorted(rows, key=lambda r: (r["key"] == "dense", r["key"] if r["key"] != "dense" else 0))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", required=True)
  parser.add_argument("--out", required=True, help="output prefix (writes .md, .csv, .png)")
  parser.add_argument("--note", action="append", default=[], help="a line added to the notes")
  args = parser.parse_args()
  runs = report_lib.load_runs(args.workdir)
  if not runs:
    raise SystemExit(f"cpac_rank_table: no runs (config.json) under {args.workdir}.")
  variants = {is_single_conv(run["config"]) for run in runs}
  if len(variants) != 1:
    raise SystemExit("cpac_rank_table: the runs mix one- and two-conv networks; report each apart.")
  single_conv = variants.pop()
  rows = rows_from_runs(runs)
  header = [
    "network",
    "test acc (last epoch)",
    "test acc (best epoch)",
    "params (total)",
    "conv weights",
    "conv compression",
    "s / epoch",
    "paper (MNIST)",
  ]
  table = [
    [
      r["label"],
      report_lib.percent_pm(r["accuracies"]),
      report_lib.percent_pm(r["best"]),
      f"{r['params']:,}" if r["params"] else "missing",
      f"{r['conv_weights']:,}",
      f"{r['compression']:.1f}x",
      f"{r['epoch_seconds']:.1f}" if r["epoch_seconds"] else "-",
      report_lib.percent(r["paper"]) if r["paper"] else "-",
    ]
    for r in rows
  ]
  cp_rows = [r for r in rows if r["key"] != "dense" and r["accuracies"]]
  plt = report_lib.pyplot()
  figure, axis = plt.subplots(figsize=(5, 3.5))
  stats = [report_lib.mean_std(r["accuracies"]) for r in cp_rows]
  axis.errorbar(
    [r["key"] for r in cp_rows],
    [100 * m for m, _ in stats],
    yerr=[100 * s for _, s in stats],
    fmt="o-",
    capsize=2,
    label="CPAC (ours, last epoch)",
  )
  for r in rows:
    if r["key"] == "dense" and r["accuracies"]:
      mean, _ = report_lib.mean_std(r["accuracies"])
      axis.axhline(100 * mean, color="gray", ls="--", label="dense conv (ours)")
  if not single_conv:  # the single-conv sweep has no per-rank numbers in the sources
    paper = sorted((k, v) for k, v in PAPER_MNIST.items() if k != "dense")
    axis.plot([k for k, _ in paper], [100 * v for _, v in paper], "s:", label="paper (MNIST)")
  axis.set_xlabel("CP rank R")
  axis.set_ylabel("test accuracy (%)")
  axis.legend()
  notes = [
    report_lib.describe_setup(runs),
    "Paper: Wang, Guo & Yue 2021, MNIST, N = 8, Adam 1e-4, batch 1 (PAPERS.md); the "
    "authors keep the best-test-epoch model, so their numbers compare with the best-epoch "
    "column."
    + (" Its one-conv sweep (R = 1..6) is given only as the CNN's 97.94%." if single_conv else ""),
    *args.note,
  ]
  title = "CPAC-Conv rank sweep" + (", one conv layer" if single_conv else "")
  for path in report_lib.write_outputs(args.out, title, notes, header, table, figure):
    print(path)


if __name__ == "__main__":
  report_lib.run_main(main)
