r"""tnjax against TensorLy-Torch at the same shapes, from the two result files.

  python -m benchmarks.anchors.compare [--tnjax benchmarks/results/anchors_cpu.json]
      [--anchor benchmarks/results/anchors_tensorly_torch_cpu.json]
      [--out benchmarks/results/anchors_comparison_cpu.md]

Ratio = TensorLy-Torch median / tnjax median (> 1: tnjax is faster). Both files
must come from the same machine; their headers are repeated in the output.
"""

from __future__ import annotations

import argparse
import json

from benchmarks.common import machine_line


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--tnjax", default="benchmarks/results/anchors_cpu.json")
  parser.add_argument("--anchor", default="benchmarks/results/anchors_tensorly_torch_cpu.json")
  parser.add_argument("--out", default="benchmarks/results/anchors_comparison_cpu.md")
  args = parser.parse_args()
  with open(args.tnjax) as f:
    ours = json.load(f)
  with open(args.anchor) as f:
    theirs = json.load(f)
  by_name = {row["case"]: row for row in theirs["rows"]}
  lines = [
    "# tnjax vs TensorLy-Torch, same shapes, same machine",
    "",
    f"tnjax: {machine_line(ours['machine'])}; command `{ours['command']}`",
    "",
    f"TensorLy-Torch: {json.dumps(theirs['machine'])}; command "
    "`/tmp/anchors-venv/bin/python benchmarks/anchors/tensorly_torch.py`",
    "",
    "Median ms per call; ratio = TensorLy-Torch / tnjax (> 1: tnjax faster). fwd+bwd =",
    "gradients of sum(y**2) w.r.t. parameters and input.",
    "",
    "| case | tnjax path | tnjax fwd | TL-Torch fwd | ratio fwd | tnjax fwd+bwd | "
    "TL-Torch fwd+bwd | ratio fwd+bwd |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ]
  for row in ours["rows"]:
    other = by_name.get(row["case"])
    if other is None:
      continue
    fwd, fwd_bwd = row["layer_fwd"]["median_ms"], row["layer_fwd_bwd"]["median_ms"]
    their_fwd, their_fwd_bwd = other["fwd"]["median_ms"], other["fwd_bwd"]["median_ms"]
    lines.append(
      f"| {row['case']} | {row['path']} | {fwd:.3g} | {their_fwd:.3g} | "
      f"**{their_fwd / fwd:.2f}x** | {fwd_bwd:.3g} | {their_fwd_bwd:.3g} | "
      f"**{their_fwd_bwd / fwd_bwd:.2f}x** |"
    )
  text = "\n".join(lines) + "\n"
  with open(args.out, "w") as f:
    f.write(text)
  print(text)


if __name__ == "__main__":
  main()
