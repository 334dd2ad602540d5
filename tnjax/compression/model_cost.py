"""What a candidate model costs on this device: XLA's FLOP count and forward latency."""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
from flax import nnx


def _forward(validation):
  return validation.forward or (lambda model, x: model(x))


def _compiled(model, validation, batch: int):
  """(jitted forward of `model` in eval mode, its state, an input of `batch` examples)."""
  copy = nnx.clone(model)
  if hasattr(copy, "eval"):
    copy.eval()
  graphdef, state = nnx.split(copy)
  forward = _forward(validation)
  step = jax.jit(lambda s, x: forward(nnx.merge(graphdef, s), x))
  example = jnp.asarray(validation.example_input)[:1]
  return step, state, jnp.repeat(example, batch, axis=0)


def latency_ms(model, validation, batch: int = 1, repeats: int = 30) -> float:
  """Median milliseconds of one jitted forward pass at `batch` on this device."""
  step, state, x = _compiled(model, validation, batch)
  for _ in range(3):
    jax.block_until_ready(step(state, x))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(step(state, x))
    times.append(1000 * (time.perf_counter() - start))
  return statistics.median(times)


def flops(model, validation) -> float:
  """XLA's FLOP count of one forward pass on one example."""
  step, state, x = _compiled(model, validation, 1)
  analysis = step.lower(state, x).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis["flops"])
