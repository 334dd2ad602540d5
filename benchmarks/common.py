"""Timing helpers for benchmarks: jit, warm up, median of repeats, machine description."""

from __future__ import annotations

import datetime
import os
import platform
import time

import jax
import numpy as np


def describe_machine() -> str:
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
  return (f"{cpu}; {os.cpu_count()} cores; jax {jax.__version__} on {jax.default_backend()} "
          f"({devices}); {datetime.date.today()}")


def time_fn(fn, *args, repeats: int = 20, min_seconds: float = 0.2) -> dict:
  """Median / quartiles in ms of a jitted fn; compile and warm-up excluded."""
  jax.block_until_ready(fn(*args))
  jax.block_until_ready(fn(*args))
  times, start = [], time.perf_counter()
  while len(times) < repeats or (time.perf_counter() - start < min_seconds and len(times) < 1000):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  ms = np.asarray(times) * 1e3
  return {"median_ms": float(np.median(ms)), "q25_ms": float(np.percentile(ms, 25)),
          "q75_ms": float(np.percentile(ms, 75)), "repeats": len(ms)}
