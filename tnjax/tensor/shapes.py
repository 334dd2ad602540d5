"""Factorising feature counts into balanced mode shapes for tensorised layers."""

from __future__ import annotations

import math


def prime_factors(n: int) -> list[int]:
  """Prime factors of n in ascending order (with multiplicity)."""
  if n < 1:
    raise ValueError(f"prime_factors needs a positive integer, got {n}.")
  factors, p = [], 2
  while p * p <= n:
    while n % p == 0:
      factors.append(p)
      n //= p
    p += 1
  if n > 1:
    factors.append(n)
  return factors


def balanced_factors(n: int, order: int) -> tuple[int, ...]:
  """Splits n exactly into `order` factors whose sizes are as even as possible.

  Large primes go first into the currently smallest bucket (greedy LPT). The
  result is arranged small-large-small (e.g. 4x8x8x4), the layout Novikov et al.
  use: the boundary cores, whose outer TT-rank is 1, get the small modes.
  """
  if order < 1:
    raise ValueError(f"order must be >= 1, got {order}.")
  buckets = [1] * order
  for p in sorted(prime_factors(n), reverse=True):
    buckets[buckets.index(min(buckets))] *= p
  ascending = sorted(buckets)
  left, right = [], []
  for i, f in enumerate(ascending):
    (left if i % 2 == 0 else right).append(f)
  return tuple(left + right[::-1])


def imbalance(factors: tuple[int, ...]) -> float:
  """Largest factor over the ideal equal factor prod(factors)**(1/len)."""
  return max(factors) / math.prod(factors) ** (1.0 / len(factors))


def factorize(
  n: int, order: int, max_padding: float = 0.1, max_imbalance: float = 2.0
) -> tuple[int, ...]:
  """Balanced factors of a dimension, padding it up if it factors badly.

  If n splits into `order` factors none of which exceeds `max_imbalance` times
  the ideal n**(1/order), those factors are returned. Otherwise (primes, 2 x a
  large prime, ...) the smallest m in [n, n * (1 + max_padding)] that does split
  well is used, or failing that the best-balanced m in the window: 1021 becomes
  1024 = 4x8x8x4 rather than 1021x1x1x1. The layer pads inputs with zeros and
  slices outputs, so the extra rows only cost parameters.

  Args:
    n: the dimension (feature count) to factorise.
    order: number of factors (TT cores).
    max_padding: largest allowed relative padding (0 forbids padding).
    max_imbalance: how uneven the factors may be before padding is tried.

  Returns:
    A tuple of `order` positive ints with product >= n.
  """
  if n < 1:
    raise ValueError(f"Cannot factorise a dimension of size {n}: it must be >= 1.")
  if order < 1:
    raise ValueError(f"order must be >= 1, got {order}.")
  if max_padding < 0:
    raise ValueError(f"max_padding must be >= 0, got {max_padding}.")
  candidates = [
    balanced_factors(m, order) for m in range(n, n + int(math.floor(n * max_padding)) + 1)
  ]
  for factors in candidates:
    if imbalance(factors) <= max_imbalance:
      return factors
  return min(candidates, key=imbalance)


def resolve_tt_shapes(
  in_features: int,
  out_features: int,
  in_shape=None,
  out_shape=None,
  order: int = 4,
  *,
  owner: str = "spec",
  max_padding: float = 0.1,
):
  """(in_shape, out_shape) of a tensorised (in_features, out_features) weight.

  Unset shapes are balanced factorisations into `order` modes, which may cover
  more features than asked (a prime is padded up, at most `max_padding`);
  explicit shapes must have the same length and multiply to the feature counts
  exactly. `owner` names the caller in errors (e.g. 'TTSpec').
  """
  if in_shape is None and out_shape is None:
    return (factorize(in_features, order, max_padding), factorize(out_features, order, max_padding))
  if in_shape is None or out_shape is None:
    raise ValueError(f"{owner}: give both in_shape and out_shape, or neither (automatic modes).")
  in_shape, out_shape = tuple(int(m) for m in in_shape), tuple(int(n) for n in out_shape)
  if not in_shape or len(in_shape) != len(out_shape) or min(in_shape + out_shape) < 1:
    raise ValueError(
      f"{owner}: in_shape {in_shape} and out_shape {out_shape} must be positive "
      "modes of the same length (pad the shorter with 1s)."
    )
  for name, shape, features in (
    ("in_shape", in_shape, in_features),
    ("out_shape", out_shape, out_features),
  ):
    if math.prod(shape) != features:
      raise ValueError(
        f"{owner}.{name}={shape} multiplies to {math.prod(shape)}, but the layer "
        f"has {features} {name[:-6]} features; choose modes whose product is "
        f"{features} (e.g. tnjax.tensor.factorize({features}, {len(shape)}) = "
        f"{factorize(features, len(shape), max_padding=0)}) or leave shapes unset."
      )
  return in_shape, out_shape


def budget_count(budget, dense_size: int) -> int:
  """A parameter budget as a count: an int is a count, a float in (0, 1] a fraction of dense.

  The `<format>_ranks_for_budget` functions take either, as TensorLy's rank
  validators take a float for 'this fraction of the full tensor'.
  """
  if isinstance(budget, float):
    if not 0.0 < budget <= 1.0:
      raise ValueError(
        f"A fractional budget must be in (0, 1], got {budget}; pass an int for a parameter count."
      )
    return max(1, int(budget * dense_size))
  if int(budget) < 1:
    raise ValueError(f"A parameter budget must be >= 1, got {budget}.")
  return int(budget)


def largest_within(count, budget: int, high: int, low: int = 1) -> int:
  """Largest r in [low, high] with count(r) <= budget (count non-decreasing); `low` if none."""
  if count(low) > budget:
    return low
  while low < high:  # bisection: counts are cheap closed forms
    mid = (low + high + 1) // 2
    if count(mid) <= budget:
      low = mid
    else:
      high = mid - 1
  return low
