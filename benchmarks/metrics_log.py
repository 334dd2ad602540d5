r"""The metrics log's cost per record as a run grows: appended (what MetricWriter does on a
local disk) against the whole log rewritten at every record (what it did before).

  python -m benchmarks.metrics_log [--records 1000 5000 10000]
  # -> benchmarks/results/metrics_log_cpu.md

Each count writes that many training records (step, time, loss, accuracy) through a fresh
MetricWriter into a temporary workdir, TensorBoard off so the log alone is measured.
Reported: total seconds and microseconds per record; linear means the per-record cost
stays flat as the count grows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from benchmarks.common import describe_machine, publish, record_end_load, report_header
from tnjax.training import writers


class _Config:
  tensorboard = False
  wandb = type("W", (), {"mode": "disabled"})()


def _seconds(records: int, rewrite_each: bool) -> float:
  with tempfile.TemporaryDirectory() as workdir:
    writer = writers.MetricWriter(workdir, _Config())
    start = time.perf_counter()
    for step in range(1, records + 1):
      writer.write(step, {"train_loss": 1.0 / step, "train_accuracy": 0.5})
      if rewrite_each:
        writer._rewrite()  # pylint: disable=protected-access  # the former behaviour
    writer.close()
    return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--records", nargs="+", type=int, default=[1000, 5000, 10000])
  parser.add_argument("--out", default="benchmarks/results/metrics_log_cpu.md")
  args = parser.parse_args()
  machine = describe_machine()
  rows = []
  for count in args.records:
    appended = _seconds(count, rewrite_each=False)
    rewritten = _seconds(count, rewrite_each=True)
    rows.append({"records": count, "appended_s": appended, "rewritten_s": rewritten})
    print(rows[-1], flush=True)
  record_end_load(machine)
  lines = [
    *report_header(
      "Metrics log: appended vs rewritten per record",
      machine,
      f"python -m benchmarks.metrics_log {' '.join(sys.argv[1:])}",
    ),
    "| records | appended s | µs / record | rewritten each record s | µs / record | ratio |",
    "|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    n = r["records"]
    lines.append(
      f"| {n:,} | {r['appended_s']:.2f} | {1e6 * r['appended_s'] / n:.0f} | "
      f"{r['rewritten_s']:.2f} | {1e6 * r['rewritten_s'] / n:.0f} | "
      f"{r['rewritten_s'] / r['appended_s']:.0f}x |"
    )
  publish(args.out, lines, {"machine": machine, "rows": rows})


if __name__ == "__main__":
  main()
