"""Block Tensor-Train matrices (Qiu et al. 2024, "Compute Better Spent"): two cores, each a
batch of small matrices, so x @ W is two batched GEMMs.

With in = m1 m2 and out = n1 n2 (input index i = i1 m2 + i2, output j = j1 n2 + j2):

  W[(i1, i2), (j1, j2)] = sum_a first[i1, i2, a, j2] * second[j2, i1, a, j1]

first (m1, m2, r, n2): for each i1, an (m2, r n2) matrix; second (n2, m1, r, n1): for each
j2, an (m1 r, n1) matrix. Monarch matrices are the rank-1 case. Each (i1, j2) block of W,
seen as an (m2, n1) matrix, is a rank-r product, so the best fit to a dense W (Frobenius)
is a truncated SVD per block.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from tnjax.tensor import checks
from tnjax.tensor import execution
from tnjax.tensor import shapes as shapes_lib
from tnjax.tensor.lowrank import errors_by_rank, tail_norms


class BTTMatrix(NamedTuple):
  """first (m1, m2, r, n2), second (n2, m1, r, n1)."""

  first: Any
  second: Any

  def astype(self, dtype) -> "BTTMatrix":
    return BTTMatrix(self.first.astype(dtype), self.second.astype(dtype))

  @property
  def shapes(self) -> tuple[tuple[int, int], tuple[int, int], int]:
    """((m1, m2), (n1, n2), rank)."""
    m1, m2, rank, n2 = self.first.shape
    return (m1, m2), (self.second.shape[-1], n2), rank


def btt_shapes(in_features: int, out_features: int, in_shape=None, out_shape=None):
  """(in_shape, out_shape), two modes each: balanced (4096 -> (64, 64); a prime is padded
  up a little, as TT's modes are) unless given."""
  return shapes_lib.resolve_tt_shapes(
    in_features, out_features, in_shape, out_shape, order=2, owner="BTTSpec"
  )


def btt_max_rank(in_shape, out_shape) -> int:
  """The rank above which nothing is gained: each (i1, j2) block is (m2, n1)."""
  return min(in_shape[1], out_shape[0])


def btt_num_params(in_shape, out_shape, rank: int) -> int:
  """first's m1 m2 r n2 plus second's n2 m1 r n1 entries."""
  (m1, m2), (n1, n2) = in_shape, out_shape
  return rank * m1 * n2 * (m2 + n1)


def btt_ranks_for_budget(in_shape, out_shape, budget) -> int:
  """The largest rank (at least 1) whose cores hold at most `budget` numbers (a count or a
  fraction of the dense weight)."""
  (m1, m2), (n1, n2) = in_shape, out_shape
  budget = shapes_lib.budget_count(budget, m1 * m2 * n1 * n2)
  per_rank = m1 * n2 * (m2 + n1)
  return max(1, min(budget // per_rank, btt_max_rank(in_shape, out_shape)))


def btt_paths(batch: int, in_shape, out_shape, rank: int, itemsize: int) -> list[execution.Path]:
  """The two batched GEMMs, or W rebuilt and one GEMM."""
  (m1, m2), (n1, n2) = in_shape, out_shape
  first = execution.gemm_cost(batch, m2, rank * n2, itemsize)
  second = execution.gemm_cost(batch, m1 * rank, n1, itemsize)
  # Each batched GEMM wants its block index leading: the input, the intermediate and the
  # output are each transposed once. With few, small blocks (a Monarch-like 64 -> 1536 MLP
  # at rank 1) these transposes, not the GEMMs, are the cost: there the rebuilt W is faster.
  moved = sum(
    execution.transpose_bytes(batch * size, itemsize) for size in (m1 * m2, m1 * rank * n2, n1 * n2)
  )
  factored = execution.Path(
    "factored", m1 * first[0] + n2 * second[0], m1 * first[1] + n2 * second[1] + moved, ops=4
  )
  rebuild = [(2.0 * m1 * m2 * n1 * n2 * rank, itemsize * m1 * m2 * n1 * n2)]
  return [factored, execution.dense_matmul_path(batch, m1 * m2, n1 * n2, rebuild, itemsize)]


def btt_matmul(x, w: BTTMatrix, bias=None, *, precision=None, method: str = "auto"):
  """x (..., m1 m2) @ W [+ bias (n1 n2,)] -> (..., n1 n2); 'factored' (two batched GEMMs),
  'dense' (W rebuilt), or 'auto' (tnjax.tensor.execution chooses). The bias is added while the
  output is still block-major: added after the final transpose, its gradient (a sum over
  tokens across a strided layout) cost a third of the layer's backward on a CPU."""
  (m1, m2), (n1, n2), rank = w.shapes
  lead = x.shape[:-1]
  method = execution.choose(
    "btt",
    btt_paths(
      execution.cost_batch(math.prod(lead)), (m1, m2), (n1, n2), rank, jnp.dtype(x.dtype).itemsize
    ),
    method=method,
    apply=lambda name, x, a, b: btt_matmul(x, BTTMatrix(a, b), precision=precision, method=name),
    operands=(x, w.first, w.second),
  )
  if method == "dense":
    y = jnp.matmul(x, btt_to_dense(w, precision=precision), precision=precision)
    return y if bias is None else y + bias
  blocks = x.reshape(-1, m1, m2)
  # For each i1: (batch, m2) @ (m2, r n2); then for each j2: (batch, m1 r) @ (m1 r, n1),
  # which leaves the output (n2, batch, n1): j2-major until the one transpose at the end.
  hidden = jnp.einsum("bpq,pqak->bpak", blocks, w.first, precision=precision)
  y = jnp.einsum("bpak,kpaj->kbj", hidden, w.second, precision=precision)
  if bias is not None:
    y = y + bias.reshape(n1, n2).T[:, None, :]
  return jnp.transpose(y, (1, 2, 0)).reshape(*lead, n1 * n2)


def btt_to_dense(w: BTTMatrix, *, precision=None):
  """The (m1 m2, n1 n2) matrix."""
  (m1, m2), (n1, n2), _ = w.shapes
  full = jnp.einsum("pqak,kpaj->pqjk", w.first, w.second, precision=precision)
  return full.reshape(m1 * m2, n1 * n2)


def _blocks(W, in_shape, out_shape, caller: str) -> np.ndarray:
  """W in float64, zero-padded to (m1 m2, n1 n2), as its (i1, j2) blocks: (m1, n2, m2, n1)."""
  (m1, m2), (n1, n2) = in_shape, out_shape
  w = checks.require_finite(np.asarray(W, np.float64), f"{caller}: W")
  if w.ndim != 2 or w.shape[0] > m1 * m2 or w.shape[1] > n1 * n2:
    raise ValueError(
      f"W has shape {w.shape} but in_shape {in_shape} and out_shape {out_shape} describe "
      f"a {(m1 * m2, n1 * n2)} matrix."
    )
  w = np.pad(w, [(0, m1 * m2 - w.shape[0]), (0, n1 * n2 - w.shape[1])])
  return w.reshape(m1, m2, n1, n2).transpose(0, 3, 1, 2)  # (i1, j2, i2, j1)


def btt_truncation_errors(W, in_shape, out_shape) -> dict[int, float]:
  """{rank r: ||W - btt_from_dense(W, ..., r)|| / ||W||} for every rank, from one SVD per
  block: the error is the blocks' singular values past r."""
  blocks = _blocks(W, in_shape, out_shape, "btt fit errors")
  dropped = np.sqrt((tail_norms(np.linalg.svd(blocks, compute_uv=False)) ** 2).sum(axis=(0, 1)))
  return errors_by_rank(dropped, btt_max_rank(in_shape, out_shape))


def btt_from_dense(W, in_shape, out_shape, rank: int) -> BTTMatrix:
  """The best rank-`rank` BTT of W in Frobenius norm: a truncated SVD of each (i1, j2)
  block (host float64; W smaller than the modes' products is zero-padded). The singular
  values are split evenly between the cores."""
  blocks = _blocks(W, in_shape, out_shape, "btt_from_dense")
  if not 1 <= rank <= btt_max_rank(in_shape, out_shape):
    raise ValueError(
      f"BTT rank {rank} must be between 1 and {btt_max_rank(in_shape, out_shape)} for modes "
      f"{tuple(in_shape)} -> {tuple(out_shape)} (min(m2, n1): a block's smaller side)."
    )
  u, s, vt = np.linalg.svd(blocks, full_matrices=False)
  root = np.sqrt(s[..., :rank])  # (m1, n2, r)
  first = (u[..., :rank] * root[:, :, None, :]).transpose(0, 2, 3, 1)  # (i1, i2, a, j2)
  second = (root[..., None] * vt[:, :, :rank, :]).transpose(1, 0, 2, 3)  # (j2, i1, a, j1)
  dtype = jnp.asarray(W).dtype
  return BTTMatrix(jnp.asarray(first, dtype), jnp.asarray(second, dtype))
