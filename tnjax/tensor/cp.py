"""CP (CANDECOMP/PARAFAC) kernels and matrices (conv: Wang, Guo & Yue 2021, CPAC-Conv).

A kernel K of shape (N out-channels, X height, Y width, S in-channels) is kept as
K = sum_r a_r o b_r o c_r o d_r, stored as four factor matrices
out_factor (N, R), height_factor (X, R), width_factor (Y, R), in_factor (S, R).
The forward pass never forms K: project S -> R channels, filter each of the R
maps with its vertical then horizontal 1-D filter (depthwise), expand R -> N.

A CP weight matrix W (prod m_k, prod n_k) has one factor (m_k, n_k, R) per pair
of modes: W[(i_1..i_d), (j_1..j_d)] = sum_r prod_k F_k[i_k, j_k, r].
"""

from __future__ import annotations

import math
import string
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tnjax.tensor import checks
from tnjax.tensor import contract, execution
from tnjax.tensor import shapes as shapes_lib
from tnjax.tensor.contract import planned_einsum


class CPKernel(NamedTuple):
  """A rank-R CP conv kernel of HWIO shape (X, Y, S, N)."""

  out_factor: jax.Array  # (N, R)
  height_factor: jax.Array  # (X, R)
  width_factor: jax.Array  # (Y, R)
  in_factor: jax.Array  # (S, R)

  def astype(self, dtype) -> "CPKernel":
    return CPKernel(*(f.astype(dtype) for f in self))


class CPMatrix(NamedTuple):
  """A rank-R CP matrix: `factors[k]` is (m_k, n_k, R), one per pair of modes."""

  factors: tuple

  @property
  def in_shape(self) -> tuple[int, ...]:
    return tuple(f.shape[0] for f in self.factors)

  @property
  def out_shape(self) -> tuple[int, ...]:
    return tuple(f.shape[1] for f in self.factors)

  def astype(self, dtype) -> "CPMatrix":
    return CPMatrix(tuple(f.astype(dtype) for f in self.factors))


# --- CP kernels --------------------------------------------------------------


def cp_kernel_num_params(kernel_shape, rank: int) -> int:
  """R (X + Y + S + N) for an HWIO kernel shape (X, Y, S, N)."""
  return rank * sum(int(n) for n in kernel_shape)


def cp_kernel_ranks_for_budget(kernel_shape, budget) -> int:
  """The largest CP rank whose factors hold at most `budget` numbers (a count or a fraction)."""
  budget = shapes_lib.budget_count(budget, math.prod(kernel_shape))
  return max(1, budget // sum(int(n) for n in kernel_shape))


# Kernels whose X*Y*S*N*R products number at most this are rebuilt by one broadcast product
# summed over r (one XLA fusion forward, five backward) instead of einsum's chain of dots and
# transposes (4 dots and ~25 fusions for fwd+bwd): there the work is a few thousand multiplies,
# so the rebuild's cost is its op count. Measured at CPAC's batch-1 layers (fwd+bwd, 2 idle
# cores): 8-11 us faster at 288-2,304 products (3x3 1->8 and 8->8 at rank 4), but 30 us slower
# at 6,912 (8->8 at rank 12), where XLA:CPU's reductions over the factors lose to the dots.
SMALL_KERNEL_PRODUCTS = 4096


def cp_kernel_to_dense(k: CPKernel):
  """The HWIO kernel (X, Y, S, N) that the factors stand for."""
  out_factor, height_factor, width_factor, in_factor = k
  products = math.prod(f.shape[0] for f in k) * out_factor.shape[1]
  if products > SMALL_KERNEL_PRODUCTS:
    return jnp.einsum("nr,xr,yr,sr->xysn", *k)
  terms = (
    height_factor[:, None, None, None, :]
    * width_factor[None, :, None, None, :]
    * in_factor[None, None, :, None, :]
    * out_factor[None, None, None, :, :]
  )
  return jnp.sum(terms, axis=-1)


def cp_kernel_from_dense(kernel, rank: int, *, n_iter: int = 500, seed: int = 0) -> CPKernel:
  """CP-ALS of an HWIO kernel (see `cp_als`)."""
  # ALS works on the (N, X, Y, S) arrangement the factors are stored in.
  factors, _ = cp_als(
    jnp.transpose(jnp.asarray(kernel), (3, 0, 1, 2)), rank, n_iter=n_iter, seed=seed
  )
  return CPKernel(*factors)


def _filter_1d(x, taps, axis: int, stride: int, padding, dilation: int):
  """Per-channel 1-D filter of x along `axis`: taps (k, R) for the R channels of x's last axis.

  Written as k shifted (strided) slices of the padded input, each scaled by its
  tap and summed: XLA fuses them into one pass over the maps. Why not a grouped
  (depthwise) lax.conv: on CPU XLA runs those, forward and backward, at about
  0.15 GFLOP/s, which made the CP chain 4-20x slower than the dense conv at the
  CPAC shapes and 13x slower than TensorLy-Torch's at a 3x3 256->256 conv.
  """
  pads = [(0, 0)] * x.ndim
  pads[axis] = tuple(padding)
  x = jnp.pad(x, pads)
  k = taps.shape[0]
  length = (x.shape[axis] - dilation * (k - 1) - 1) // stride + 1
  out = None
  for i in range(k):
    start = i * dilation
    shifted = jax.lax.slice_in_dim(x, start, start + (length - 1) * stride + 1, stride, axis)
    term = shifted * taps[i].astype(x.dtype)
    out = term if out is None else out + term
  return out


def _mix_channels(x, matrix, precision):
  """x's last axis times `matrix` (C, C'), as one 2-D GEMM (contract.gemm). The same
  product as the 4-D einsum "bhwc,cd->bhwd", whose backward XLA:CPU runs about 2x slower
  (the CP row of benchmarks/results/headline_cpu.md)."""
  dtype = jnp.result_type(x, matrix)
  rows = x.reshape(-1, x.shape[-1]).astype(dtype)
  mixed = contract.gemm(rows, matrix.astype(dtype), precision=precision)
  return mixed.reshape(x.shape[:-1] + (matrix.shape[1],))


def cp_feature_maps(
  x, k: CPKernel, *, strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), precision=None
):
  """The R maps of NHWC x after the in-channel mix and both 1-D spatial filters.

  Map r is what rank-1 term r contributes before it is spread over the N
  out-channels by column r of the out-channel factor. Arguments as `cp_kernel_conv`.

  Returns:
    (B, H', W', R).
  """
  _, height_factor, width_factor, in_factor = k
  maps = _mix_channels(x, in_factor, precision)
  # The vertical pass takes the H stride/padding/dilation, the horizontal pass the W ones.
  maps = _filter_1d(maps, height_factor, 1, strides[0], padding[0], dilation[0])
  return _filter_1d(maps, width_factor, 2, strides[1], padding[1], dilation[1])


def cp_kernel_conv(
  x,
  k: CPKernel,
  *,
  strides=(1, 1),
  padding=((0, 0), (0, 0)),
  dilation=(1, 1),
  precision=None,
  method: str = "auto",
):
  """Convolution of NHWC x with the CP kernel.

  Args:
    x: (B, H, W, S) input.
    k: the CPKernel.
    strides, dilation: (h, w) pairs.
    padding: explicit ((top, bottom), (left, right)) pairs.
    precision: passed to every contraction.
    method: 'factored' (in-channel mix, two 1-D depthwise filters, out-channel
      mix: the kernel is never formed), 'dense' (rebuild the kernel, one conv) or
      'auto' (tnjax.tensor.execution chooses per shape and device).

  Returns:
    (B, H', W', N), equal to lax.conv with cp_kernel_to_dense(k).
  """
  conv_args = dict(strides=strides, padding=padding, dilation=dilation, precision=precision)
  kernel_shape = (k.height_factor.shape[0], k.width_factor.shape[0]) + (
    k.in_factor.shape[0],
    k.out_factor.shape[0],
  )
  out_hw = execution.conv_out_hw(x.shape[1:3], kernel_shape[:2], strides, padding, dilation)
  method = execution.choose(
    "cp_kernel",
    execution.cp_kernel_paths(
      execution.cost_batch(x.shape[0]),
      x.shape[1:3],
      out_hw,
      kernel_shape,
      k.out_factor.shape[1],
      x.dtype.itemsize,
    ),
    method=method,
    apply=lambda name, x, *k: cp_kernel_conv(x, CPKernel(*k), method=name, **conv_args),
    operands=(x,) + tuple(k),
  )
  if method == "dense":
    return contract.dense_conv(x, cp_kernel_to_dense(k).astype(x.dtype), **conv_args)
  maps = cp_feature_maps(
    x, k, strides=strides, padding=padding, dilation=dilation, precision=precision
  )
  return _mix_channels(maps, k.out_factor.T, precision)


def _mode_letters(count: int, skip: str = "") -> str:
  letters = [c for c in string.ascii_letters if c not in skip]
  if count > len(letters):
    raise ValueError(f"{count} modes are more than einsum has letters for.")
  return "".join(letters[:count])


def _full_equation(order: int) -> str:
  modes = _mode_letters(order, skip="z")
  return ",".join(m + "z" for m in modes) + "->" + modes


def cp_full(factors):
  """The d-way array sum_r f_1[:, r] o ... o f_d[:, r] of (dim_k, R) factor matrices."""
  return jnp.einsum(_full_equation(len(factors)), *factors)


# --- CP matrices -------------------------------------------------------------


def cp_matrix_num_params(in_shape, out_shape, rank: int) -> int:
  """R sum_k m_k n_k."""
  return rank * sum(m * n for m, n in zip(in_shape, out_shape))


def cp_matrix_ranks_for_budget(in_shape, out_shape, budget) -> int:
  """The largest CP rank whose factors hold at most `budget` numbers (a count or a fraction)."""
  budget = shapes_lib.budget_count(budget, math.prod(in_shape) * math.prod(out_shape))
  return max(1, budget // sum(m * n for m, n in zip(in_shape, out_shape)))


def cp_matrix_to_dense(w: CPMatrix):
  """The (prod m_k, prod n_k) matrix of pair-mode factors (m_k, n_k, R)."""
  factors = tuple(w.factors)
  d = len(factors)
  letters = _mode_letters(2 * d, skip="z")
  rows, cols = letters[:d], letters[d:]
  equation = ",".join(i + j + "z" for i, j in zip(rows, cols)) + "->" + rows + cols
  full = jnp.einsum(equation, *factors)
  return full.reshape(math.prod(f.shape[0] for f in factors), -1)


def cp_matrix_from_dense(
  W, in_shape, out_shape, rank: int, *, n_iter: int = 500, seed: int = 0
) -> CPMatrix:
  """CP-ALS of a matrix over its (m_k n_k) pair modes; a W smaller than the modes is zero-padded."""
  in_shape, out_shape = tuple(in_shape), tuple(out_shape)
  W = jnp.asarray(W)
  W = jnp.pad(W, [(0, math.prod(in_shape) - W.shape[0]), (0, math.prod(out_shape) - W.shape[1])])
  # (m_1..m_d, n_1..n_d) -> (m_1 n_1, ..., m_d n_d): one ALS mode per factor.
  d = len(in_shape)
  paired = W.reshape(in_shape + out_shape).transpose([a for k in range(d) for a in (k, d + k)])
  factors, _ = cp_als(
    paired.reshape([m * n for m, n in zip(in_shape, out_shape)]), rank, n_iter=n_iter, seed=seed
  )
  return CPMatrix(tuple(f.reshape(m, n, rank) for f, m, n in zip(factors, in_shape, out_shape)))


def cp_matrix_matmul(
  x, w: CPMatrix, *, precision=None, preferred_element_type=None, method: str = "auto"
):
  """x @ W for a CP matrix W of pair-mode factors (m_k, n_k, R).

  Args:
    x: (..., prod m_k).
    w: the CPMatrix.
    method: 'factored' (the input meets the factors, in an order opt_einsum
      plans once per shape), 'dense' (rebuild W, one GEMM) or 'auto'
      (tnjax.tensor.execution chooses).

  Returns:
    (..., prod n_k).
  """
  factors = tuple(w.factors)
  d = len(factors)
  in_shape = w.in_shape
  letters = _mode_letters(2 * d, skip="yz")
  rows, cols = letters[:d], letters[d:]
  batch_shape = x.shape[:-1]
  rank = factors[0].shape[-1]
  method = execution.choose(
    "cp_matrix",
    execution.cp_matrix_paths(
      execution.cost_batch(math.prod(batch_shape)),
      in_shape,
      w.out_shape,
      rank,
      jnp.dtype(x.dtype).itemsize,
    ),
    method=method,
    apply=lambda name, x, *f: cp_matrix_matmul(x, CPMatrix(f), precision=precision, method=name),
    operands=(x,) + factors,
  )
  if method == "dense":
    weight = cp_matrix_to_dense(w).astype(x.dtype)
    y = jnp.matmul(x, weight, precision=precision, preferred_element_type=preferred_element_type)
    return y
  x = x.reshape((-1,) + in_shape)
  equation = "y" + rows + "," + ",".join(i + j + "z" for i, j in zip(rows, cols)) + "->y" + cols
  y = planned_einsum(
    equation, x, *factors, precision=precision, preferred_element_type=preferred_element_type
  )
  return y.reshape(batch_shape + (-1,))


def _khatri_rao(matrices):
  """Column-wise Kronecker product, first matrix's index slowest."""
  result = matrices[0]
  for m in matrices[1:]:
    result = (result[:, None, :] * m[None, :, :]).reshape(-1, m.shape[1])
  return result


def _balanced_split(shape) -> int:
  """The k in 1..d-1 whose modes [:k] and [k:] are closest in size."""
  sizes = [math.prod(shape[:k]) for k in range(1, len(shape))]
  total = math.prod(shape)
  return 1 + int(np.argmin([abs(math.log(s) - math.log(total / s)) for s in sizes]))


def _contract_block(partial, position: int, block_factors):
  """One mode's MTTKRP from its block's partial (block dims..., R): the others contracted."""
  moved = np.moveaxis(partial, position, 0)
  others = block_factors[:position] + block_factors[position + 1 :]
  if not others:
    return moved
  rows = moved.reshape(moved.shape[0], -1, moved.shape[-1])
  return np.einsum("ijr,jr->ir", rows, _khatri_rao(others))


def _solve_normal_equations(gram, mttkrp):
  """F with F gram = mttkrp (gram symmetric); the pseudo-inverse when gram is singular."""
  try:
    return np.linalg.solve(gram, mttkrp.T).T
  except np.linalg.LinAlgError:
    return mttkrp @ np.linalg.pinv(gram)


def cp_als(tensor, rank: int, *, n_iter: int = 500, tol: float = 1e-10, seed: int = 0):
  """CP decomposition of a d-way array (d >= 2) by alternating least squares.

  A short ALS (host NumPy, float64) instead of a TensorLy dependency: each step
  solves one factor exactly given the others (the MTTKRP, unfolding times
  Khatri-Rao product, against the Hadamard product of the Gram matrices). The
  MTTKRPs of a sweep share two GEMMs, one per half of the modes; the fit comes from
  the MTTKRP and Gram matrices, so no sweep rebuilds the tensor.

  Args:
    tensor: the array to decompose.
    rank: number of rank-1 terms R.
    n_iter: most ALS sweeps.
    tol: stop once a sweep changes the relative error by less than this.
    seed: fills the columns an SVD start cannot (rank above a mode's size).

  Returns:
    (factors, relative Frobenius error): a tuple of one (dim_k, R) matrix per
    mode, in the tensor's mode order.
  """
  if rank < 1:
    raise ValueError(f"CP rank must be >= 1, got {rank}.")
  if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
    raise ValueError(f"CP rank must be an int, got {rank!r}.")
  T = checks.require_finite(np.asarray(tensor, dtype=np.float64), "cp_als: the tensor")
  if T.ndim < 2:
    raise ValueError(f"cp_als expects an array with at least 2 modes, got shape {T.shape}.")
  rng = np.random.default_rng(seed)
  # Start from each unfolding's leading singular vectors (random columns where
  # the mode is smaller than the rank): far fewer ALS sweeps than a random start.
  factors = []
  for mode, dim in enumerate(T.shape):
    u = np.linalg.svd(np.moveaxis(T, mode, 0).reshape(dim, -1), full_matrices=False)[0]
    extra = rng.normal(size=(dim, max(0, rank - u.shape[1])))
    factors.append(np.concatenate([u[:, :rank], extra], axis=1))
  norm_sq = float(np.sum(T * T))
  norm = np.sqrt(norm_sq) or 1.0  # an all-zero tensor: report the absolute error 0
  # The modes split into a left and a right block of about equal size; T is the
  # (left, right) matrix. Each block's MTTKRPs come from one GEMM of T against
  # the Khatri-Rao product of the other block's factors (fixed while this block
  # updates), then a small contraction inside the block. A GEMM per block and
  # sweep instead of one per mode against a Khatri-Rao product as large as T
  # times rank / (that mode's size): 384 MB per mode for the own-model CNN's linear1.
  split = _balanced_split(T.shape)
  blocks = (range(split), range(split, T.ndim))
  matrix = T.reshape(math.prod(T.shape[:split]), -1)
  grams = [f.T @ f for f in factors]
  previous = error = np.inf
  for _ in range(n_iter):
    for block, other in (blocks, blocks[::-1]):
      other_kr = _khatri_rao([factors[m] for m in other])
      partial = matrix @ other_kr if block[0] == 0 else matrix.T @ other_kr
      partial = partial.reshape([T.shape[m] for m in block] + [rank])
      for mode in block:
        gram = np.ones((rank, rank))
        for m in range(T.ndim):
          if m != mode:
            gram *= grams[m]
        mttkrp = _contract_block(partial, block.index(mode), [factors[m] for m in block])
        factors[mode] = _solve_normal_equations(gram, mttkrp)
        grams[mode] = factors[mode].T @ factors[mode]
    # The fit from what the last update computed (as TensorLy does), not from the
    # rebuilt tensor: ||T - X||^2 = ||T||^2 - 2 <T, X> + ||X||^2, with
    # <T, X> = sum(F_last * MTTKRP_last) and ||X||^2 = sum of the Hadamard product of
    # all Gram matrices.
    inner = float(np.sum(factors[-1] * mttkrp))
    model_sq = float(np.sum(gram * grams[-1]))
    error = np.sqrt(max(norm_sq - 2 * inner + model_sq, 0.0)) / norm
    if abs(previous - error) < tol:
      break
    previous = error
  dtype = jnp.asarray(tensor).dtype
  factors = tuple(jnp.asarray(f, dtype) for f in _balance_norms(factors))
  return factors, float(error)


def _balance_norms(factors):
  """The same CP tensor with each component's magnitude shared equally by its factors.

  ALS leaves a component's scale wherever the last update put it (often one factor
  with norm 1e3 against others near 1). The product is the same, but gradient descent
  on such factors is badly conditioned: fine-tuning a CP-ALS fit at the source's
  learning rate diverged until the norms were balanced.
  """
  norms = [np.linalg.norm(f, axis=0) for f in factors]
  magnitude = np.prod(norms, axis=0)
  share = magnitude ** (1.0 / len(factors))
  # A component with a zero column anywhere is zero: leave its factors as they are.
  live = magnitude > 0
  return [
    np.where(live, f * np.divide(share, n, out=np.ones_like(n), where=n > 0), f)
    for f, n in zip(factors, norms)
  ]


SIGNIFICANCE_READINGS = ("norms", "in_factor")


def cp_component_significance(w: CPKernel | CPMatrix, reading: str = "norms"):
  """The weight of each rank-1 term, one number per component.

  'norms': the product of its factors' column norms (the Frobenius norm of the
    rank-1 term); both formats.
  'in_factor': the CPAC-Conv authors' reading: the signed value of the in-channel
    factor itself, for a conv with one input channel (their conv1).
  """
  if reading == "in_factor":
    if not isinstance(w, CPKernel) or w.in_factor.shape[0] != 1:
      raise ValueError(
        "reading='in_factor' needs a CP conv with one input channel (one value per "
        "component, as the CPAC-Conv paper reads conv1); use reading='norms'."
      )
    return w.in_factor[0]
  if reading != "norms":
    raise ValueError(f"reading={reading!r} is unknown; choose one of {SIGNIFICANCE_READINGS}.")
  factors = w.factors if isinstance(w, CPMatrix) else tuple(w)
  norms = [jnp.linalg.norm(f.reshape(-1, f.shape[-1]), axis=0) for f in factors]
  return jnp.prod(jnp.stack(norms), axis=0)


def rank_components(w: CPKernel | CPMatrix, reading: str = "norms"):
  """Component indices, most significant (largest magnitude) first."""
  return jnp.argsort(-jnp.abs(cp_component_significance(w, reading)))
