r"""Every headline speed ratio in one run: tnjax's layers against their dense twins (timed in
turn, in this process) and, where TensorLy-Torch has the layer, against it.

  python -m benchmarks.anchors [--quick] [--torch_python /tmp/anchors-venv/bin/python]
      -> benchmarks/results/headline_<backend>.{md,json}

The cases are the issue's: Novikov's VGG FC6 TT layer and a 256->256 CP conv (both also in
TensorLy-Torch), ADTN's FC-2 hidden layer at M = 4, batch 500, CPAC's CP convolutions at
their paper shapes, and Block Tensor-Train at 4096x4096 with 8,192 tokens. TensorLy-Torch
runs in its own virtual environment (see tensorly_torch.py), in a subprocess right after
tnjax's measurements, on the same machine; without that environment its column says so.
Each measurement repeats until its interquartile range is within 10% of its median or its
time limit, and reports the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import jax

from benchmarks import layers, paper_points
from benchmarks.common import describe_machine, publish, record_end_load, report_header

ANCHORED = (  # the cases TensorLy-Torch also runs (names as in layers.ANCHOR_CASES)
  "VGG FC6 25088x4096, TT (2,7,8,8,7,4)x(4,)*6 rank 4, batch 128",
  "VGG-like conv 3x3 256->256, CP rank 64, 32x32 maps, batch 32",
)
ADTN_FC2 = layers.Case(
  "ADTN FC-2 hidden 1024x1024, M = 4 ReLU, batch 500",
  layers.dense_pair({"kind": "adtn", "layers": 4, "nonlinearity": "relu"}, 1024, 1024),
  (500, 1024),
)
BTT = next(c for c in layers.BTT_CASES if "8x512" in c.name)


def cases() -> list[layers.Case]:
  anchored = [c for c in layers.ANCHOR_CASES if c.name in ANCHORED]
  cpac = [
    layers.Case(
      f"{p.name} (batch {p.input.shape[0]})",
      lambda r, p=p: (p.layer, p.dense_twin(r)),
      tuple(p.input.shape),
    )
    for p in paper_points.all_layer_points("cpac")
  ]
  return anchored + [ADTN_FC2] + cpac + [BTT]


def tensorly_torch(python: str, quick: bool) -> dict:
  """{case: TensorLy-Torch's row} from tensorly_torch.py run by `python`; {} without it."""
  if not python or not os.path.exists(python):
    return {}
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tensorly_torch.py")
  with tempfile.TemporaryDirectory() as scratch:
    out = os.path.join(scratch, "tltorch.json")
    rounds = ["--rounds", "5", "--max_seconds", "8"] if quick else []
    done = subprocess.run([python, script, "--out", out, *rounds], capture_output=True, text=True)
    if done.returncode != 0:
      print(f"TensorLy-Torch run failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
      return {}
    with open(out) as f:
      return {row["case"]: row for row in json.load(f)["rows"]}


def target_lines(rows: list[dict], theirs: dict) -> list[str]:
  """Issue 34's targets against this run's ratios, and, where one is missed, why."""
  by_case = {row["case"]: row for row in rows}
  cp_case, adtn = ANCHORED[1], by_case.get(ADTN_FC2.name)
  cp_row, cp_theirs = by_case.get(cp_case), theirs.get(cp_case)
  cpac = [row for row in rows if row["case"].startswith("cpac_")]
  btt = by_case.get(BTT.name)
  lines = ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]

  def add(target, measured, met):
    lines.append(f"| {target} | {measured} | {'yes' if met else '**no**'} |")

  if cp_row and cp_theirs:
    ratio = cp_theirs["fwd_bwd"]["median_ms"] / cp_row["layer_fwd_bwd"]["median_ms"]
    add("CP conv 256->256 rank 64: >= 1.2x TensorLy-Torch (fwd+bwd)", f"{ratio:.2f}x", ratio >= 1.2)
  if adtn:
    slower = 1 / adtn["speedup_fwd_bwd"]
    add("ADTN FC-2 M = 4, batch 500: within 4x of dense (fwd+bwd)", f"{slower:.1f}x", slower <= 4)
  if cpac:
    worst = max(1 / row["speedup_fwd_bwd"] for row in cpac)
    add("every CPAC shape within 1.05x of its dense twin", f"worst {worst:.2f}x", worst <= 1.05)
  if btt:
    add(
      "BTT 4096x4096, 8x fewer weights: >= 4x dense (fwd+bwd)",
      f"{btt['speedup_fwd_bwd']:.2f}x",
      btt["speedup_fwd_bwd"] >= 4,
    )
  if adtn:
    dense_ms, adtn_ms = adtn["dense_fwd_bwd"]["median_ms"], adtn["layer_fwd_bwd"]["median_ms"]
    lines += [
      "",
      f"ADTN: the dense layer's whole fwd+bwd takes {dense_ms:.1f} ms here and the ADTN "
      f"layer's {adtn_ms:.0f} ms, most of it generating the 1024x1024 weight and its gradient "
      "(Q = 20, M = 4; benchmarks/results/adtn_generator_cpu.md): 40 memory-bound passes over the 2^20 state "
      "forward (~30 ms), two GEMMs per pass backward (a floor of ~2-3x the forward with "
      f"XLA's GEMMs). Within 4x ({4 * dense_ms:.0f} ms) would need the whole generator "
      "faster than its forward is today; the custom VJP (fused_backward=True) matches "
      "autodiff, so the lever left is a kernel per pass (both backward GEMMs in one read) "
      "or an accelerator.",
    ]
  if cpac:
    lines += [
      "",
      "CPAC: at batch 1 these layers take 0.1-0.3 ms, nearly all of it fixed costs per op: "
      "the CP layer runs its dense twin's convolutions plus the kernel's rebuild from its "
      "factors (one fused op forward, five small reductions backward), and those ops are "
      "the gap; with spreads of 30% and more there, a single row moves by more than the "
      "5% target from run to run. At batch 64 the rebuild is noise, and the planner's "
      "factored chain wins where the maps are small enough (conv2).",
    ]
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="few repeats (a smoke run)")
  parser.add_argument("--torch_python", default="/tmp/anchors-venv/bin/python")
  parser.add_argument("--out", default=f"benchmarks/results/headline_{jax.default_backend()}.md")
  parser.add_argument(
    "--rerender", default=None, help="rewrite --out from this stored JSON, measuring nothing"
  )
  args = parser.parse_args()
  if args.rerender:
    with open(args.rerender) as f:
      stored = json.load(f)
    lines = report_lines(
      stored["rows"], stored["tensorly_torch"], stored["machine"], stored["command"]
    )
    publish(args.out, lines, stored)
    return
  timing = (
    dict(repeats=5, min_repeats=3, max_seconds=8.0)
    if args.quick
    else dict(repeats=20, min_seconds=5.0, max_seconds=40.0, max_spread=0.10)
  )
  machine = describe_machine()
  rows = []
  for case in cases():
    rows.append(layers.run_case(case, **timing))
    print(f"{case.name}: {rows[-1]['speedup_fwd_bwd']:.2f}x dense (fwd+bwd)", flush=True)
  theirs = tensorly_torch(args.torch_python, args.quick)
  record_end_load(machine)
  command = "python -m benchmarks.anchors " + " ".join(sys.argv[1:])
  publish(
    args.out,
    report_lines(rows, theirs, machine, command),
    {"machine": machine, "command": command, "rows": rows, "tensorly_torch": theirs},
  )


def report_lines(rows, theirs, machine, command) -> list[str]:
  """The results file's lines from the measured rows (also from a stored JSON: --rerender)."""
  lines = [
    *report_header("Headline ratios: tnjax against dense and TensorLy-Torch", machine, command),
    "fwd+bwd = gradients of sum(y**2) w.r.t. parameters and input; medians (spread = "
    "interquartile range / median). vs dense = dense median / tnjax median, vs TL-Torch = "
    "TensorLy-Torch median / tnjax median (> 1: tnjax faster).",
    "",
    "| case | path | tnjax fwd+bwd ms (spread) | vs dense fwd+bwd | vs dense fwd | "
    "vs TL-Torch fwd+bwd |",
    "|---|---|---:|---:|---:|---:|",
  ]
  for row in rows:
    mine = row["layer_fwd_bwd"]
    other = theirs.get(row["case"])
    versus = (
      f"{other['fwd_bwd']['median_ms'] / mine['median_ms']:.2f}x"
      if other
      else ("no TensorLy-Torch environment" if row["case"] in ANCHORED else "-")
    )
    lines.append(
      f"| {row['case']} | {row['path']} | {mine['median_ms']:.3g} ({100 * mine['spread']:.0f}%) | "
      f"**{row['speedup_fwd_bwd']:.2f}x** | {row['speedup_fwd']:.2f}x | {versus} |"
    )
  return lines + target_lines(rows, theirs)


if __name__ == "__main__":
  main()
