r"""The compress study's table: accuracy right after conversion, after fine-tuning, and of the
same compressed architecture trained from scratch, per network, format and ratio.

  python experiments/compress_table.py --workdir runs/compress --out experiments/results/compress_fashion_mnist

Reads the runs experiments/run_fashion_mnist_compress.sh makes: <net>_<kind>_r<ratio>_seed=<s>
(compressed by `tnjax.compress`; compress.json), scratch_<same> (trained from scratch) and
source_<net>_seed=<s> (the dense sources); mean ± std over the seeds.
"""

from __future__ import annotations

import argparse
import re


import report_lib
from tnjax import errors, fileio
from tnjax.training import run_files

NAME = re.compile(r"^(fc2|lenet5)_(\w+?)_r(\d+)_seed=(\d+)$")


def collect(workdir: str) -> tuple[dict, dict]:
  """({(net, kind, ratio): {'converted': [...], 'finetuned': [...], 'scratch': [...],
  'weights': n}}, {net: [source accuracies]})."""
  root = fileio.workdir_path(workdir)
  rows, sources = {}, {}
  for run in sorted(root.iterdir()):
    if run.name.startswith("source_"):
      result = fileio.read_json(run / run_files.RESULT)
      if result:
        sources.setdefault(run.name.split("_")[1], []).append(result["test_accuracy"])
      continue
    match = NAME.match(run.name)
    report = fileio.read_json(run / run_files.COMPRESS_REPORT)
    if not match or not report:
      continue
    net, kind, ratio, _ = match.groups()
    row = rows.setdefault(
      (net, kind, int(ratio)), {"converted": [], "finetuned": [], "scratch": []}
    )
    row["weights"] = sum(layer["weights_after"] for layer in report["layers"])
    row["dense"] = sum(layer["weights_before"] for layer in report["layers"])
    row["converted"].append(report["converted_accuracy"])
    if "finetuned_accuracy" in report:
      row["finetuned"].append(report["finetuned_accuracy"])
    elif (run / run_files.DIVERGED).exists():
      row["diverged"] = row.get("diverged", 0) + 1
    scratch = fileio.read_json(root / f"scratch_{run.name}" / run_files.RESULT)
    if scratch:
      row["scratch"].append(scratch["test_accuracy"])
  if not rows:  # an empty table would overwrite a real one without a word
    raise errors.UserError(
      f"{root} holds no compressions (<net>_<kind>_r<ratio>_seed=<s>/compress.json); pass "
      "the study's workdir."
    )
  return rows, sources


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--note", action="append", default=[], help="a line added to the notes")
  args = parser.parse_args()
  rows, sources = collect(args.workdir)
  header = [
    "network",
    "format",
    "ratio",
    "compressed weights",
    "right after conversion",
    "after fine-tuning",
    "trained from scratch",
  ]
  table = [
    [
      net,
      kind,
      f"{ratio}x",
      f"{row['weights']:,} of {row['dense']:,}",
      report_lib.percent_pm(row["converted"]),
      report_lib.percent_pm(row["finetuned"])
      if row["finetuned"] or not row.get("diverged")
      else f"diverged ({row['diverged']} seed(s))",
      report_lib.percent_pm(row["scratch"]),
    ]
    for (net, kind, ratio), row in sorted(rows.items())
  ]
  table += [
    [net, "dense source", "1x", "-", "-", "-", report_lib.percent_pm(accuracies)]
    for net, accuracies in sorted(sources.items())
  ]
  plt = report_lib.pyplot()
  figure, axes = plt.subplots(1, 2, figsize=(10, 4))
  for axis, net in zip(axes, ("fc2", "lenet5")):
    for kind in sorted({k for n, k, _ in rows if n == net}):
      points = sorted((r, v) for (n, k, r), v in rows.items() if n == net and k == kind)
      for key, style in (("finetuned", "-o"), ("scratch", "--x")):
        means = [report_lib.mean_std(v[key])[0] for _, v in points]
        ratios = [r for (r, v), m in zip(points, means) if m is not None]
        axis.plot(ratios, [m for m in means if m is not None], style, label=f"{kind} {key}")
    axis.set(xscale="log", xlabel="compression ratio", ylabel="test accuracy", title=net)
    axis.legend(fontsize=7)
  notes = [
    "Compress-then-fine-tune (`python -m tnjax.compress`) against the same compressed "
    "architecture trained from scratch for the same total epochs; "
    "experiments/run_fashion_mnist_compress.sh.",
    # Sources train for EPOCHS (10), compressed runs fine-tune for FINETUNE (2), and the
    # from-scratch runs train for their sum (12): the epochs listed are these three.
    report_lib.describe_setup(report_lib.load_runs([args.workdir])),
    *args.note,
  ]
  for path in report_lib.write_outputs(
    args.out, "Compressing trained networks", notes, header, table, figure
  ):
    print(path)


if __name__ == "__main__":
  report_lib.run_main(main)
