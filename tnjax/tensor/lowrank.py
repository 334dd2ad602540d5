"""Matrix-rank factorisation W = U @ V, the baseline of Novikov et al. (2015)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from tnjax.tensor import checks
from tnjax.tensor import execution
from tnjax.tensor import shapes as shapes_lib


class LowRankMatrix(NamedTuple):
  """W = u @ v with u (in, R) and v (R, out)."""

  u: Any
  v: Any

  def astype(self, dtype) -> "LowRankMatrix":
    return LowRankMatrix(self.u.astype(dtype), self.v.astype(dtype))


def lowrank_num_params(in_features: int, out_features: int, rank: int) -> int:
  """Entries of U (in x rank) and V (rank x out)."""
  return rank * (in_features + out_features)


def lowrank_ranks_for_budget(in_features: int, out_features: int, budget) -> int:
  """The largest rank with at most `budget` numbers (a count or a fraction of dense), >= 1."""
  budget = shapes_lib.budget_count(budget, in_features * out_features)
  return max(1, min(budget // (in_features + out_features), min(in_features, out_features)))


def lowrank_matmul(
  x, w: LowRankMatrix, *, precision=None, preferred_element_type=None, method: str = "auto"
):
  """x @ U @ V: through the R numbers per example ('factored'), or with W = U V
  rebuilt first ('dense'); 'auto' lets tnjax.tensor.execution choose."""
  (m, rank), n = w.u.shape, w.v.shape[1]
  method = execution.choose(
    "lowrank",
    execution.two_factor_paths(
      execution.cost_batch(math.prod(x.shape[:-1])), m, rank, n, jnp.dtype(x.dtype).itemsize
    ),
    method=method,
    apply=lambda name, x, u, v: lowrank_matmul(
      x, LowRankMatrix(u, v), precision=precision, method=name
    ),
    operands=(x, w.u, w.v),
  )
  if method == "dense":
    weight = jnp.matmul(w.u, w.v, precision=precision)
    return jnp.matmul(x, weight, precision=precision, preferred_element_type=preferred_element_type)
  h = jnp.matmul(x, w.u, precision=precision, preferred_element_type=preferred_element_type)
  return jnp.matmul(h, w.v, precision=precision, preferred_element_type=preferred_element_type)


def lowrank_to_dense(w: LowRankMatrix):
  return w.u @ w.v


def tail_norms(s):
  """The norms of the singular values dropped at each rank: out[..., k] = ||s[..., k:]||."""
  return np.sqrt(np.cumsum(np.asarray(s)[..., ::-1] ** 2, axis=-1))[..., ::-1]


def truncation_errors(W) -> dict[int, float]:
  """{rank k: ||W - W_k|| / ||W||} for every k, W_k the truncated SVD (host float64)."""
  W_np = checks.require_finite(np.asarray(W, dtype=np.float64), "lowrank fit errors: W")
  tail = tail_norms(np.linalg.svd(W_np, compute_uv=False))
  return errors_by_rank(tail, len(tail))


def errors_by_rank(dropped, top: int) -> dict[int, float]:
  """{rank r: dropped[r] / dropped[0]} for r = 1..top, from the norms a truncation drops at
  each rank (dropped[0]: the whole weight's; past the array nothing is dropped)."""
  norm = float(dropped[0]) or 1.0
  return {r: (float(dropped[r]) if r < len(dropped) else 0.0) / norm for r in range(1, top + 1)}


def lowrank_from_dense(W, rank: int) -> LowRankMatrix:
  """Best rank-`rank` factors of W in Frobenius norm (truncated SVD, host float64).

  The singular values are split evenly between U and V.
  """
  W_np = checks.require_finite(np.asarray(W, dtype=np.float64), "lowrank_from_dense: W")
  if not 1 <= rank <= min(W_np.shape):
    raise ValueError(f"rank {rank} must be between 1 and min{W_np.shape} = {min(W_np.shape)}.")
  u, s, vt = np.linalg.svd(W_np, full_matrices=False)
  root = np.sqrt(s[:rank])
  dtype = jnp.asarray(W).dtype
  return LowRankMatrix(
    jnp.asarray(u[:, :rank] * root, dtype), jnp.asarray(root[:, None] * vt[:rank], dtype)
  )
