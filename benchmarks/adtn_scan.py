r"""ADTN training steps with the gate layers unrolled against scanned (`scan_layers`).

  python -m benchmarks.adtn_scan [--repeats 15]   # -> benchmarks/results/adtn_scan_<backend>.md

For the ADTN FC-2 and LeNet-5 configs at M = 8 (the defaults the study chose), the
whole training step (`benchmarks.train_step.timed_step_call`) is built once with every ADTN
layer's `scan_layers` off (a Python loop over the M layers, unrolled by XLA) and once on
(one `lax.scan` over layers 2..M). Reported: seconds from building the step to its first
result (compile time, mostly), and the step's median time, the two timed in turn.
"""

from __future__ import annotations

import argparse
import sys

import jax

from benchmarks import paper_points
from benchmarks.common import (
  ms_cell,
  describe_machine,
  record_end_load,
  report_header,
  time_interleaved,
  publish,
)
from benchmarks.train_step import timed_step_call
from tnjax import config_lib

POINTS = (("adtn_fc2_mnist", ""), ("adtn_lenet5_mnist", "layers=8"))


def _step(name: str, arg: str, scan_layers: bool):
  config = paper_points.load(name, arg)
  scanned = {f"model.layers.{layer}.scan_layers": scan_layers for layer in config.model.layers}
  config = config_lib.apply_overrides(config, scanned, new_leaves=True)  # config is locked
  return timed_step_call(config, dense=False)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--repeats", type=int, default=15)
  parser.add_argument("--out", default=f"benchmarks/results/adtn_scan_{jax.default_backend()}.md")
  args = parser.parse_args()
  machine = describe_machine()
  rows = []
  for name, arg in POINTS:
    calls, first = {}, {}
    for variant, scan in (("unrolled", False), ("scanned", True)):
      calls[variant], first[variant] = _step(name, arg, scan)
    stats = time_interleaved(calls, repeats=args.repeats, min_repeats=5, max_seconds=60)
    rows.append({"config": name + (f"({arg})" if arg else ""), "first_s": first, "stats": stats})
    print(rows[-1]["config"], first, {k: v["median_ms"] for k, v in stats.items()}, flush=True)
  record_end_load(machine)
  lines = [
    *report_header(
      "ADTN step, gate layers unrolled vs scanned",
      machine,
      f"python -m benchmarks.adtn_scan {' '.join(sys.argv[1:])}",
    ),
    "First call: building the step to its first result (compile, mostly). Step: median ms",
    "(interquartile range), the two variants timed in turn.",
    "",
    "| config | first call unrolled s | first call scanned s | step unrolled ms "
    "| step scanned ms | scanned / unrolled step |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for row in rows:
    loop, scan = row["stats"]["unrolled"], row["stats"]["scanned"]
    lines.append(
      f"| {row['config']} | {row['first_s']['unrolled']:.1f} | {row['first_s']['scanned']:.1f} | "
      f"{ms_cell(loop)} | {ms_cell(scan)} | "
      f"**{scan['median_ms'] / loop['median_ms']:.2f}x** |"
    )
  publish(args.out, lines, {"machine": machine, "rows": rows})


if __name__ == "__main__":
  main()
