"""CP (CANDECOMP/PARAFAC) convolution kernels (Wang, Guo & Yue 2021, CPAC-Conv).

A kernel K of shape (N out-channels, X height, Y width, S in-channels) is kept as
K = sum_r a_r o b_r o c_r o d_r, stored as four factor matrices
out_factor (N, R), height_factor (X, R), width_factor (Y, R), in_factor (S, R).
The forward pass never forms K: project S -> R channels, filter each of the R
maps with its vertical then horizontal 1-D filter (depthwise), expand R -> N.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class CPFactors(NamedTuple):
  out_factor: jax.Array     # (N, R)
  height_factor: jax.Array  # (X, R)
  width_factor: jax.Array   # (Y, R)
  in_factor: jax.Array      # (S, R)


def cp_num_params(rank: int, out_channels: int, height: int, width: int, in_channels: int) -> int:
  """R (N + X + Y + S)."""
  return rank * (out_channels + height + width + in_channels)


def cp_to_dense(factors: CPFactors):
  """The HWIO kernel (X, Y, S, N) that the factors stand for."""
  a, b, c, d = factors
  return jnp.einsum("nr,xr,yr,sr->xysn", a, b, c, d)


def _depthwise(x, filters_hw, strides, padding, dilation, precision):
  """Per-channel conv: x (B, H, W, R) with filters (kh, kw, R)."""
  rank = x.shape[-1]
  kernel = filters_hw[:, :, None, :]  # HWIO with I = 1 per group
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=strides, padding=padding, rhs_dilation=dilation,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=rank, precision=precision)


def cp_conv(x, factors: CPFactors, *, strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1),
            precision=None):
  """Convolution of NHWC x with the CP kernel, as four cheap convolutions.

  Args:
    x: (B, H, W, S) input.
    factors: CPFactors.
    strides, dilation: (h, w) pairs.
    padding: explicit ((top, bottom), (left, right)) pairs.

  Returns:
    (B, H', W', N), equal to lax.conv with cp_to_dense(factors).
  """
  a, b, c, d = factors
  maps = jnp.einsum("bhws,sr->bhwr", x, d, precision=precision)
  maps = _depthwise(maps, b[:, None, :], (strides[0], 1), (padding[0], (0, 0)),
                    (dilation[0], 1), precision)
  maps = _depthwise(maps, c[None, :, :], (1, strides[1]), ((0, 0), padding[1]),
                    (1, dilation[1]), precision)
  return jnp.einsum("bhwr,nr->bhwn", maps, a, precision=precision)


def _khatri_rao(matrices):
  """Column-wise Kronecker product, first matrix's index slowest."""
  result = matrices[0]
  for m in matrices[1:]:
    result = (result[:, None, :] * m[None, :, :]).reshape(-1, m.shape[1])
  return result


def cp_als(tensor, rank: int, *, n_iter: int = 500, tol: float = 1e-10, seed: int = 0):
  """CP decomposition of a 4-way array by alternating least squares.

  A ~40-line ALS (host NumPy, float64) instead of a TensorLy dependency: each
  step solves one factor exactly given the other three; `seed` fills the columns
  an SVD start cannot (rank above a mode's size).

  Returns:
    (CPFactors in the tensor's mode order, relative Frobenius error).
  """
  if rank < 1:
    raise ValueError(f"CP rank must be >= 1, got {rank}.")
  T = np.asarray(tensor, dtype=np.float64)
  if T.ndim != 4:
    raise ValueError(f"cp_als expects a 4-way array, got shape {T.shape}.")
  rng = np.random.default_rng(seed)
  # Start from each unfolding's leading singular vectors (random columns where
  # the mode is smaller than the rank): far fewer ALS sweeps than a random start.
  factors = []
  for mode, dim in enumerate(T.shape):
    u = np.linalg.svd(np.moveaxis(T, mode, 0).reshape(dim, -1), full_matrices=False)[0]
    extra = rng.normal(size=(dim, max(0, rank - u.shape[1])))
    factors.append(np.concatenate([u[:, :rank], extra], axis=1))
  norm = np.linalg.norm(T)
  previous = np.inf
  for _ in range(n_iter):
    for mode in range(4):
      others = [factors[m] for m in range(4) if m != mode]
      unfolded = np.moveaxis(T, mode, 0).reshape(T.shape[mode], -1)
      gram = np.ones((rank, rank))
      for f in others:
        gram *= f.T @ f
      factors[mode] = unfolded @ _khatri_rao(others) @ np.linalg.pinv(gram)
    approx = np.einsum("ar,br,cr,dr->abcd", *factors)
    error = np.linalg.norm(approx - T) / norm
    if abs(previous - error) < tol:
      break
    previous = error
  dtype = jnp.asarray(tensor).dtype
  return CPFactors(*(jnp.asarray(f, dtype) for f in factors)), float(error)


def cp_component_significance(factors: CPFactors):
  """Magnitude of each rank-1 term: the product of its four factor-column norms."""
  return jnp.prod(jnp.stack([jnp.linalg.norm(f, axis=0) for f in factors]), axis=0)


def rank_components(factors: CPFactors):
  """Component indices, most significant first."""
  return jnp.argsort(-cp_component_significance(factors))
