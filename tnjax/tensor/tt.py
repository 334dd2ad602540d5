"""Tensor-Train matrices (Novikov et al. 2015), as pure functions.

A TT-matrix stands for a dense W of shape (M, N), M = prod(in_shape),
N = prod(out_shape). Core k has shape (r_{k-1}, m_k, n_k, r_k) with r_0 = r_d = 1:

  W[(i_1..i_d), (j_1..j_d)] = G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]

Row and column multi-indices are C-ordered (i_1 most significant), so
`x @ W` equals contracting x.reshape(..., m_1, ..., m_d) with the cores.
"""

from __future__ import annotations

import functools
import math
import string
import warnings
from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np

from tnjax.tensor import checks
from tnjax.tensor import execution
from tnjax.tensor import shapes as shapes_lib
from tnjax.tensor.contract import gemm, planned_einsum
from tnjax.tensor.lowrank import tail_norms

_LETTERS = string.ascii_letters


class TTMatrix(NamedTuple):
  """A TT-matrix: `cores[k]` has shape (r_{k-1}, m_k, n_k, r_k), r_0 = r_d = 1."""

  cores: tuple

  @property
  def in_shape(self) -> tuple[int, ...]:
    return tuple(c.shape[1] for c in self.cores)

  @property
  def out_shape(self) -> tuple[int, ...]:
    return tuple(c.shape[2] for c in self.cores)

  @property
  def ranks(self) -> tuple[int, ...]:
    """(1, r_1, ..., r_{d-1}, 1)."""
    return tuple(c.shape[0] for c in self.cores) + (1,)

  def astype(self, dtype) -> "TTMatrix":
    return TTMatrix(tuple(c.astype(dtype) for c in self.cores))


def _as_shape(name: str, shape: Sequence[int]) -> tuple[int, ...]:
  shape = tuple(int(s) for s in shape)
  if not shape or any(s < 1 for s in shape):
    raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {shape}.")
  return shape


def check_shapes(in_shape: Sequence[int], out_shape: Sequence[int]):
  """Validates a pair of mode shapes and returns them as int tuples."""
  in_shape, out_shape = _as_shape("in_shape", in_shape), _as_shape("out_shape", out_shape)
  if len(in_shape) != len(out_shape):
    raise ValueError(
      f"in_shape {in_shape} and out_shape {out_shape} have different lengths "
      f"({len(in_shape)} vs {len(out_shape)}); a TT-matrix pairs one input mode with one "
      "output mode per core, so give both the same number of factors (use 1 to pad)."
    )
  return in_shape, out_shape


def max_tt_ranks(in_shape: Sequence[int], out_shape: Sequence[int]) -> tuple[int, ...]:
  """Largest useful rank of each of the d-1 inner bonds (beyond it, nothing is gained)."""
  sizes = [m * n for m, n in zip(in_shape, out_shape)]
  return tuple(min(math.prod(sizes[:k]), math.prod(sizes[k:])) for k in range(1, len(sizes)))


def tt_ranks(
  in_shape: Sequence[int], out_shape: Sequence[int], ranks, *, clip: bool = True
) -> tuple[int, ...]:
  """Full bond ranks (r_0, ..., r_d) from one int or d-1 inner ranks, clipped to the max.

  Clipping warns when it changes per-bond ranks, or when one int exceeds every bond's
  maximum; one int trimmed only at the edge bonds (rank 8 on 2x2 modes) is silent.

  `clip=False` keeps ranks above a bond's useful maximum, as Novikov et al.'s code
  does (their Figure 1 counts, e.g. 2,112 weights for 2^10 modes at rank 8, where
  clipping stores 1,824 for the same matrices).

  Raises:
    ValueError: a rank below 1 or a per-bond list of the wrong length.
  """
  in_shape, out_shape = check_shapes(in_shape, out_shape)
  d = len(in_shape)
  inner = (ranks,) * (d - 1) if isinstance(ranks, (int, np.integer)) else tuple(ranks)
  if len(inner) == d + 1 and inner[0] == inner[-1] == 1:
    inner = inner[1:-1]
  if len(inner) != d - 1:
    raise ValueError(f"ranks must be one int or {d - 1} per-bond ints for {d} cores, got {ranks}.")
  if any(int(r) < 1 for r in inner):
    raise ValueError(f"TT-ranks must be >= 1, got {tuple(inner)}.")
  if not clip:
    return (1,) + tuple(int(r) for r in inner) + (1,)
  limit = max_tt_ranks(in_shape, out_shape)
  clipped = tuple(min(int(r), m) for r, m in zip(inner, limit))
  # One int is a maximum rank: trimming it at the edge bonds is the TT convention, silent;
  # per-bond ranks, or one int above every bond's maximum, were meant literally.
  uniform = isinstance(ranks, (int, np.integer))
  if clipped != tuple(int(r) for r in inner) and (not uniform or int(ranks) > max(limit)):
    warnings.warn(
      f"TT-ranks {tuple(inner)} exceed the largest useful ranks {limit} for "
      f"in_shape {in_shape}, out_shape {out_shape}; clipped to {clipped}.",
      stacklevel=2,
    )
  return (1,) + clipped + (1,)


def tt_core_shapes(
  in_shape, out_shape, ranks, *, clip: bool = True
) -> list[tuple[int, int, int, int]]:
  """Shapes (r_{k-1}, m_k, n_k, r_k) of the cores (see `tt_ranks` for `clip`)."""
  full = tt_ranks(in_shape, out_shape, ranks, clip=clip)
  return [(full[k], m, n, full[k + 1]) for k, (m, n) in enumerate(zip(in_shape, out_shape))]


def tt_num_params(in_shape, out_shape, ranks, *, clip: bool = True) -> int:
  """Number of entries in all cores: sum_k r_{k-1} m_k n_k r_k."""
  return sum(math.prod(s) for s in tt_core_shapes(in_shape, out_shape, ranks, clip=clip))


# --- x @ W in TT form --------------------------------------------------------
# The cores are split into a left and a right group, each merged into one
# matrix (a partial reconstruction, independent of the batch), and x passes
# through the two in two plain GEMMs with one transpose of the intermediate
# between them:
#
#   (B m_l, m_r) @ (m_r, r n_r)   -> (B, m_l r, n_r)  -> transpose -> (B n_r, m_l r)
#   (B n_r, m_l r) @ (m_l r, n_l) -> (B, n_r, n_l)    -> transpose -> (B, n_l n_r)
#
# For 4x8x8x4 at rank 8 this is half the FLOPs of the dense layer; for VGG's
# FC6 at rank 4 a twelfth. Why this layout (XLA on a 2-core CPU, measured with
# benchmarks/layers.py and XLA's profiler): 2-D products whose left operand is
# contracted on its last axis go to XLA's multi-threaded GEMM library, whereas
# a batched dot_general with a merged half broadcast over the batch (the
# previous version) materialises the broadcast and runs on one thread, and a
# core-by-core chain needs one batch-sized transpose per core. The backward
# pass keeps every product in the fast form through contract.gemm. Against the
# batched form, forward+backward is about 1.3x faster at 1024x1024 (batch 100)
# and 1.5x at VGG FC6 (batch 128). The split point is chosen per static shape
# by FLOPs plus elements moved.


@functools.lru_cache(maxsize=1024)
def plan_tt_split(core_shapes: tuple[tuple[int, int, int, int], ...], batch: int) -> int:
  """Number of cores in the left group minimising merges + GEMMs + transposes for `batch` rows."""

  profile = execution.device_profile("cpu")
  cost = lambda h: execution.seconds(execution.tt_paths(core_shapes, batch, h, 4)[0], profile)
  return min(range(1, len(core_shapes)), key=cost)


METHODS = execution.METHODS


def tt_matmul_path(core_shapes, batch: int, itemsize: int = 4) -> str:
  """The path ('factored' or 'dense') `tt_matmul` takes for `batch` rows on this device."""
  core_shapes = tuple(tuple(s) for s in core_shapes)
  if len(core_shapes) == 1:
    return "factored"
  split = plan_tt_split(core_shapes, batch)
  return execution.choose("tt", execution.tt_paths(core_shapes, batch, split, itemsize))


def _half_matrix(cores, bond_in_rows: bool, precision=None):
  """Contracts consecutive cores straight into the matrix a GEMM needs.

  The outer bond is the one leaving the group (r_h for the left group, r_{h-1}
  on the right). With `bond_in_rows` the matrix is ((m..., outer bond), (n...)),
  else ((m...), (outer bond, n...)). The group's other end must have rank 1.
  """
  d = len(cores)
  ins, outs, bonds = _LETTERS[:d], _LETTERS[d : 2 * d], _LETTERS[2 * d : 3 * d + 1]
  operands = ",".join(bonds[k] + ins[k] + outs[k] + bonds[k + 1] for k in range(d))
  rows = math.prod(c.shape[1] for c in cores)
  if bond_in_rows:
    equation, rows = f"{operands}->{ins}{bonds[d]}{outs}", rows * cores[-1].shape[3]
  else:
    equation = f"{operands}->{ins}{bonds[0]}{outs}"
  return planned_einsum(equation, *cores, precision=precision).reshape(rows, -1)


def tt_matmul(
  x, tt: TTMatrix, *, precision=None, preferred_element_type=None, method: str = "auto"
):
  """Computes x @ W for W in TT form, without forming W (unless that is faster).

  Args:
    x: array of shape (..., prod(m_k)); any number of leading batch dims.
    tt: the TTMatrix.
    precision, preferred_element_type: passed to every contraction with x.
    method: 'factored' contracts x with the cores; 'dense' rebuilds W (cheap for
      small layers) and runs one GEMM; 'auto' lets tnjax.tensor.execution choose per
      static shape and device (dense only for large batches on small layers).

  Returns:
    Array of shape (..., prod(n_k)).

  On CPU the products use `contract.gemm`, whose custom gradient leaves out
  forward-mode autodiff (jax.jvp) there.
  """
  cores = tuple(tt.cores)
  in_shape, out_shape = tt.in_shape, tt.out_shape
  if x.shape[-1] != math.prod(in_shape):
    raise ValueError(
      f"Input has {x.shape[-1]} features but the TT cores expect "
      f"prod{in_shape} = {math.prod(in_shape)}."
    )
  execution.check_method(method, "tt_matmul method")
  batch_shape = x.shape[:-1]
  batch = math.prod(batch_shape)
  if batch == 0:  # nothing to multiply (and the reshapes below cannot infer -1 from 0)
    return jnp.zeros(batch_shape + (math.prod(out_shape),), x.dtype)
  matmul = functools.partial(
    gemm, precision=precision, preferred_element_type=preferred_element_type
  )
  core_shapes = tuple(tuple(c.shape) for c in cores)
  if len(cores) > 1:
    planned = execution.cost_batch(batch)
    split = plan_tt_split(core_shapes, planned)
    method = execution.choose(
      "tt",
      execution.tt_paths(core_shapes, planned, split, jnp.dtype(x.dtype).itemsize),
      method=method,
      apply=lambda name, x, *cores: tt_matmul(x, TTMatrix(cores), precision=precision, method=name),
      operands=(x,) + cores,
    )
  if method == "dense":
    y = matmul(x.reshape(batch, -1), tt_to_dense(tt, precision=precision))
    return y.reshape(batch_shape + (y.shape[-1],))
  if len(cores) == 1:
    y = matmul(x.reshape(batch, -1), cores[0][0, :, :, 0])
    return y.reshape(batch_shape + (out_shape[0],))
  h = split
  m_left, n_left = math.prod(in_shape[:h]), math.prod(out_shape[:h])
  m_right, n_right = math.prod(in_shape[h:]), math.prod(out_shape[h:])
  left = _half_matrix(cores[:h], bond_in_rows=True, precision=precision)  # (m_l r, n_l)
  right = _half_matrix(cores[h:], bond_in_rows=False, precision=precision)  # (m_r, r n_r)
  y = matmul(x.reshape(batch * m_left, m_right), right)  # (B m_l, r n_r)
  y = y.reshape(batch, -1, n_right).transpose(0, 2, 1).reshape(batch * n_right, -1)
  z = matmul(y, left).reshape(batch, n_right, n_left)
  return z.transpose(0, 2, 1).reshape(batch_shape + (n_left * n_right,))


def tt_to_dense(tt: TTMatrix, *, precision=None):
  """The dense (prod m_k, prod n_k) matrix the TT-matrix stands for."""
  cores = tuple(tt.cores)
  d = len(cores)
  ins, outs = _LETTERS[:d], _LETTERS[d : 2 * d]
  bonds = _LETTERS[2 * d : 3 * d + 1]
  operands = ",".join(bonds[k] + ins[k] + outs[k] + bonds[k + 1] for k in range(d))
  equation = f"{operands}->{bonds[0]}{ins}{outs}{bonds[d]}"
  full = planned_einsum(equation, *cores, precision=precision)
  in_size = math.prod(c.shape[1] for c in cores)
  return full.reshape(in_size, -1)


def eps_rank(s, per_step: float) -> int:
  """The smallest rank whose discarded singular values `s[rank:]` have norm <= per_step
  (an all-zero matrix: rank 1)."""
  return max(1, int(np.sum(tail_norms(s) > per_step)))


def interleaved_tensor(W, in_shape, out_shape, caller: str) -> np.ndarray:
  """W in float64, zero-padded to the modes' products, as a tensor whose axes interleave
  the modes (m_1, n_1, m_2, n_2, ...) so that core k owns the pair (m_k, n_k)."""
  W_np = checks.require_finite(np.asarray(W, dtype=np.float64), f"{caller}: W")
  full = (math.prod(in_shape), math.prod(out_shape))
  if W_np.ndim != 2 or W_np.shape[0] > full[0] or W_np.shape[1] > full[1]:
    raise ValueError(
      f"W has shape {W_np.shape} but in_shape {in_shape} and out_shape "
      f"{out_shape} describe a {full} matrix."
    )
  W_np = np.pad(W_np, [(0, full[0] - W_np.shape[0]), (0, full[1] - W_np.shape[1])])
  d = len(in_shape)
  tensor = W_np.reshape(tuple(in_shape) + tuple(out_shape))
  return tensor.transpose([i for k in range(d) for i in (k, d + k)])


def tt_from_dense(
  W, in_shape: Sequence[int], out_shape: Sequence[int], max_rank=None, eps=None
) -> TTMatrix:
  """TT-SVD (Oseledets 2011) of a dense matrix into a TT-matrix.

  Ranks come from `max_rank` (one int or d-1 per-bond ints), from `eps` (each
  SVD is truncated so the total relative Frobenius error is at most eps), or
  both (the smaller wins). With neither, the decomposition is exact.

  A W smaller than the modes' products (automatic modes padded a prime up) is
  padded with zeros. Runs on the host in float64 (ranks are data dependent, so
  this is not jittable) and returns cores in W's dtype.
  """
  in_shape, out_shape = check_shapes(in_shape, out_shape)
  tensor = interleaved_tensor(W, in_shape, out_shape, "tt_from_dense")
  if eps is not None and eps < 0:
    raise ValueError(f"eps must be >= 0, got {eps}.")
  d = len(in_shape)
  limits = (
    tt_ranks(in_shape, out_shape, max_rank)[1:-1] if max_rank is not None else (None,) * (d - 1)
  )
  norm = np.linalg.norm(tensor)
  per_step = (eps / math.sqrt(max(d - 1, 1))) * norm if eps else 0.0
  cores, rank, rest = [], 1, tensor.reshape(1, -1)
  for k in range(d - 1):
    rest = rest.reshape(rank * in_shape[k] * out_shape[k], -1)
    u, s, vt = np.linalg.svd(rest, full_matrices=False)
    new_rank = len(s)
    if eps is not None:
      new_rank = eps_rank(s, per_step)
    if limits[k] is not None:
      new_rank = min(new_rank, limits[k])
    cores.append(u[:, :new_rank].reshape(rank, in_shape[k], out_shape[k], new_rank))
    rest = s[:new_rank, None] * vt[:new_rank]
    rank = new_rank
  cores.append(rest.reshape(rank, in_shape[-1], out_shape[-1], 1))
  dtype = jnp.asarray(W).dtype
  return TTMatrix(tuple(jnp.asarray(c, dtype=dtype) for c in cores))


def tt_ranks_for_budget(in_shape: Sequence[int], out_shape: Sequence[int], budget) -> int:
  """The largest uniform TT-rank whose cores hold at most `budget` numbers (at least 1).

  `budget` is a count, or a float in (0, 1]: that fraction of the dense weight.
  Ranks above a bond's useful maximum are clipped, as `tt_ranks` does.
  """
  in_shape, out_shape = check_shapes(in_shape, out_shape)
  budget = shapes_lib.budget_count(budget, math.prod(in_shape) * math.prod(out_shape))
  limits = max_tt_ranks(in_shape, out_shape)

  def count(rank):
    full = (1,) + tuple(min(rank, limit) for limit in limits) + (1,)
    return sum(full[k] * m * n * full[k + 1] for k, (m, n) in enumerate(zip(in_shape, out_shape)))

  return shapes_lib.largest_within(count, budget, high=max(limits, default=1))
