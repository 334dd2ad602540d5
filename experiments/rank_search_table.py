r"""The rank-search study's table (issue 33): LeNet-5 on Fashion-MNIST compressed by one budget
each (equal-error and sensitivity allocation at the same ratio, accuracy_drop, latency_ms),
mean ± std over the seeds finished so far.

  python experiments/rank_search_table.py --workdir runs/rank_search \
      --out experiments/results/rank_search_fashion_mnist

Reads the runs experiments/run_fashion_mnist_rank_search.sh makes: source_lenet5_seed=<s> and
lenet5_<plan>_seed=<s> (compress.json; WORKDIR/search/search.json for measured budgets).
Test accuracy is read only for each run's chosen model.
"""

from __future__ import annotations

import argparse
import re

import report_lib
from tnjax import errors, fileio
from tnjax.compression import rank_search
from tnjax.training import run_files

NAME = re.compile(r"^lenet5_(.+)_seed=(\d+)$")
PLANS = {  # run-name part -> what the row says
  "ratio_10": "ratio 10, equal error",
  "ratio_10_allocate_sensitivity": "ratio 10, sensitivity",
  "drop_1.0": "accuracy_drop 1.0",
}


def collect(workdir: str, seeds: int) -> tuple[list, list]:
  root = fileio.workdir_path(workdir)
  groups, runs = {}, []
  for run in sorted(root.iterdir()):
    match = NAME.match(run.name)
    report = fileio.read_json(run / run_files.COMPRESS_REPORT) if match else None
    if not report or "finetuned_accuracy" not in report:
      continue
    search = fileio.read_json(run / "search" / "search.json") or {}
    summary = run / "search" / "search.md"
    met = ("NOT met" not in summary.read_text()) if summary.exists() else None
    measured = search.get("measured", {})
    latency = [m[k] for m in measured.values() for k in m if k.startswith("latency_ms")]
    groups.setdefault(match.group(1), []).append(
      {
        "weights": sum(r["weights_after"] for r in report["layers"]),
        "before": sum(r["weights_before"] for r in report["layers"]),
        "source": report["source_accuracy"],
        "converted": report["converted_accuracy"],
        "finetuned": report["finetuned_accuracy"],
        "finetunes": sum("accuracy" in m for m in measured.values()),
        "latencies": latency,
        "met": met,
      }
    )
    runs.append(report_lib.load_run(run))
  if not groups:  # an empty table would overwrite a real one without a word
    raise errors.UserError(
      f"{root} holds no finished searches (lenet5_<plan>_seed=<s>/compress.json with a "
      "fine-tuned accuracy); pass the rank-search study's workdir."
    )
  sources = [report_lib.load_run(r) for r in sorted(root.glob("source_lenet5_seed=*"))]
  rows = []
  for plan, cell in sorted(groups.items()):
    mean_weights = sum(c["weights"] for c in cell) / len(cell)
    drops = [100 * (c["source"] - c["finetuned"]) for c in cell]
    rows.append(
      [
        PLANS.get(plan, plan.replace("_", " ")),
        f"{len(cell)} of {seeds}",
        f"{mean_weights:,.0f} ({cell[0]['before'] / mean_weights:.1f}x)",
        report_lib.percent_pm([c["source"] for c in cell]),
        report_lib.percent_pm([c["converted"] for c in cell]),
        report_lib.percent_pm([c["finetuned"] for c in cell]),
        ", ".join(f"{d:+.2f}" for d in drops),
        ", ".join(str(c["finetunes"]) for c in cell) or "-",
        ", ".join({True: "yes", False: "no", None: "-"}[c["met"]] for c in cell),
      ]
    )
  return rows, runs, sources


def front_figure(workdir: str):
  """Each accuracy_drop search's front (summed sensitivity loss, and validation accuracy of
  the points it fine-tuned) against weights, per seed; the ratio-10 runs' test accuracy."""
  root = fileio.workdir_path(workdir)
  plt = report_lib.pyplot()
  figure, (losses, accuracies) = plt.subplots(1, 2, figsize=(11, 4))
  for run in sorted(root.glob("lenet5_drop_*_seed=*")):
    state = fileio.read_json(run / "search" / "search.json")
    if not state or "table" not in state:
      continue
    seed = run.name.rsplit("=", 1)[1]
    front = rank_search.recorded_front(state)
    losses.plot(
      [p["weights"] for p in front],
      [p["sensitivity_loss"] for p in front],
      "o-",
      ms=3,
      label=f"seed {seed}",
    )
    tried = [p for p in front if "accuracy" in p]
    (line,) = accuracies.plot(
      [p["weights"] for p in tried],
      [100 * p["accuracy"] for p in tried],
      "s--",
      ms=4,
      label=f"seed {seed}: search fine-tunes (validation)",
    )
    accuracies.axhline(
      100 * state["source"]["accuracy"] - 1.0, color=line.get_color(), lw=0.6, ls=":"
    )
  for plan, marker in (("ratio_10", "v"), ("ratio_10_allocate_sensitivity", "^")):
    reports = [
      fileio.read_json(r / run_files.COMPRESS_REPORT)
      for r in sorted(root.glob(f"lenet5_{plan}_seed=*"))
    ]
    reports = [r for r in reports if r and "finetuned_accuracy" in r]
    if reports:
      accuracies.plot(
        [sum(x["weights_after"] for x in r["layers"]) for r in reports],
        [100 * r["finetuned_accuracy"] for r in reports],
        marker,
        color="k",
        mfc="none" if marker == "v" else "k",
        label=PLANS[plan] + " (test)",
      )
  for axis in (losses, accuracies):
    axis.set_xscale("log")
    axis.set_xlabel("weights of the planned layers (conv2, fc1, fc2)")
    axis.legend(fontsize=7)
  losses.set_ylabel("summed validation loss, each layer converted alone")
  accuracies.set_ylabel("accuracy after fine-tuning (%)")
  accuracies.set_title("dotted: each seed's source - 1 point", fontsize=8)
  figure.tight_layout()
  return figure


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--seeds", type=int, default=3, help="seeds planned")
  parser.add_argument("--note", default="")
  args = parser.parse_args()
  rows, runs, sources = collect(args.workdir, args.seeds)
  header = [
    "budget",
    "runs",
    "planned weights after (compression)",
    "source",
    "converted",
    "fine-tuned (test)",
    "source - fine-tuned, points, per seed",
    "search fine-tunes per seed",
    "target met on validation, per seed",
  ]
  notes = [
    "LeNet-5 (configs/sketch_mnist.py:method=dense,fashion_idx) trained on the first 55,000 "
    "training examples; the last 5,000 are the search's validation split. Plan: conv2 as "
    "Tucker-2, fc1 and fc2 as low rank (experiments/plans/by_budget.py). Every compressed run "
    "fine-tuned 2 epochs; search candidates 1 epoch each. Driver: "
    "`experiments/run_fashion_mnist_rank_search.sh`.",
    "Sources: " + (report_lib.describe_setup(sources) if sources else "none yet."),
    "Compressed runs: " + (report_lib.describe_setup(runs) if runs else "none finished yet."),
    *([args.note] if args.note else []),
  ]
  title = "Rank search on Fashion-MNIST (LeNet-5)"
  figure = front_figure(args.workdir)
  for path in report_lib.write_outputs(args.out, title, notes, header, rows, figure):
    print("wrote", path)


if __name__ == "__main__":
  report_lib.run_main(main)
