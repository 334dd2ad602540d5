"""Benchmark helpers: a description of the machine and interleaved timing of jitted calls."""

from __future__ import annotations

import datetime
import json
import importlib.metadata
import os
import platform
import time
from typing import Any, Callable, Mapping

import jax
import numpy as np


def cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return "?"


def describe_machine() -> dict[str, Any]:
  """What the numbers depend on: CPU, cores, library versions, backend, date, load."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {
    "cpu": cpu_model(),
    "cores": cores,
    "jax": jax.__version__,
    "jaxlib": _version("jaxlib"),
    "flax": _version("flax"),
    "backend": jax.default_backend(),
    "devices": sorted({d.device_kind for d in jax.devices()}),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
  }


def machine_line(machine: Mapping[str, Any]) -> str:
  """One readable line for a results file header."""
  return (
    f"{machine['cpu']}, {machine['cores']} cores"
    # On an accelerator the numbers depend on the chip, not the host CPU.
    + (f", {' + '.join(machine['devices'])}" if machine["backend"] != "cpu" else "")
    + f"; jax {machine['jax']} (jaxlib "
    f"{machine['jaxlib']}, flax {machine['flax']}) on {machine['backend']}; {machine['date']}; "
    f"load average (1, 5, 15 min) at start {machine['load_average']}"
    + (f", at end {machine['load_average_end']}" if "load_average_end" in machine else "")
  )


def record_end_load(machine: dict) -> None:
  """Adds the load average at the end of the run, which machine_line reports beside the start's."""
  machine["load_average_end"] = [round(v, 2) for v in os.getloadavg()]


def report_header(title: str, machine: Mapping[str, Any], command: str, machine_note: str = ""):
  """A results file's first lines: the title (with the backend), the machine and the command."""
  return [
    f"# {title} ({machine['backend']})",
    "",
    f"Machine: {machine_line(machine)}{machine_note}",
    "",
    f"Command: `{command}`",
    "",
  ]


def _stats(seconds) -> dict[str, float]:
  ms = np.asarray(seconds) * 1e3
  median, q25, q75 = np.median(ms), np.percentile(ms, 25), np.percentile(ms, 75)
  return {
    "median_ms": float(median),
    "q25_ms": float(q25),
    "q75_ms": float(q75),
    "min_ms": float(ms.min()),
    "spread": float((q75 - q25) / median),  # interquartile range / median
    "repeats": len(ms),
  }


def _spread_above(times: Mapping[str, list], limit: float | None) -> bool:
  """Whether any call's interquartile range is still above `limit` x its median."""
  if limit is None:
    return False
  return any(len(t) < 4 or _stats(t)["spread"] > limit for t in times.values())


def ms_cell(stats: Mapping[str, float]) -> str:
  """A table cell: the median ms and, in brackets, the interquartile range (flagged when
  it is over 10% of the median: a noisy figure)."""
  flag = " !" if (stats["q75_ms"] - stats["q25_ms"]) > 0.10 * stats["median_ms"] else ""
  return f"{stats['median_ms']:.3g} ({stats['q25_ms']:.3g}-{stats['q75_ms']:.3g}){flag}"


def time_interleaved(
  calls: Mapping[str, Callable[[], Any]],
  *,
  repeats: int = 30,
  min_repeats: int = 5,
  min_seconds: float = 0.0,
  max_seconds: float = 60.0,
  max_repeats: int = 500,
  max_spread: float | None = None,
) -> dict[str, dict]:
  """Median, quartiles, min and spread (interquartile range / median) in ms of
  zero-argument jitted calls, timed in turn.

  Each call is run twice first (compilation and warm-up, not timed). Then every
  round times each call once, so load from other processes on a shared machine
  falls on all of them alike. Runs `repeats` rounds, more (up to `max_repeats`)
  while under `min_seconds` or while a call's spread is above `max_spread`, fewer
  (down to `min_repeats`) once past `max_seconds`; the spread is in the results, so a
  noisy figure says so.
  """
  for call in calls.values():
    jax.block_until_ready(call())
    jax.block_until_ready(call())
  times = {name: [] for name in calls}
  start = time.perf_counter()
  for round_index in range(max_repeats):
    elapsed = time.perf_counter() - start
    if round_index >= repeats and elapsed >= min_seconds and not _spread_above(times, max_spread):
      break
    if round_index >= min_repeats and elapsed > max_seconds:
      break
    for name, call in calls.items():
      t0 = time.perf_counter()
      jax.block_until_ready(call())
      times[name].append(time.perf_counter() - t0)
  return {name: _stats(t) for name, t in times.items()}


def write_results(out: str, markdown: str, data: dict) -> None:
  """The table to `out` (.md) and the raw numbers beside it (.json, same stem)."""
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, "w") as f:
    f.write(markdown)
  with open(os.path.splitext(out)[0] + ".json", "w") as f:
    json.dump(data, f, indent=1, default=str)


def publish(out: str, lines: list[str], data: dict) -> None:
  """Prints the report's lines and writes them with the raw numbers (write_results)."""
  text = "\n".join(lines) + "\n"
  print(text)
  write_results(out, text, data)
