"""Variance targets of the dense initialisers a factorised layer stands in for."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# name -> (numerator, which fan): Var(W_ij) = numerator / fan.
_VARIANCE_RULES = {
  "glorot_normal": (1.0, "avg"),  # 2 / (fan_in + fan_out)
  "he_normal": (2.0, "in"),
  "lecun_normal": (1.0, "in"),
}


def target_variance(init: str, fan_in: int, fan_out: int) -> float:
  """Variance of each entry of a dense weight initialised by `init`."""
  if init not in _VARIANCE_RULES:
    raise ValueError(f"Unknown init {init!r}; choose one of {sorted(_VARIANCE_RULES)}.")
  numerator, mode = _VARIANCE_RULES[init]
  fan = {"in": fan_in, "avg": (fan_in + fan_out) / 2.0}[mode]
  return numerator / fan


def normal(key, shape, std: float, dtype=jnp.float32):
  """Zero-mean normal entries with standard deviation `std`."""
  return std * jax.random.normal(key, shape, dtype)


def product_stds(variance: float, num_factors: int, summed_terms: int) -> float:
  """Std of each factor so a sum of `summed_terms` products of `num_factors` iid
  zero-mean factors has total variance `variance`.

  Var(sum_r prod_k a_k) = summed_terms * prod_k Var(a_k); equal shares per factor.
  """
  return math.sqrt((variance / summed_terms) ** (1.0 / num_factors))
