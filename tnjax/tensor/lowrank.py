"""Matrix-rank factorisation W = U @ V, the baseline of Novikov et al. (2015)."""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp


def lowrank_num_params(in_features: int, out_features: int, rank: int) -> int:
  """Entries of U (in x rank) and V (rank x out)."""
  return rank * (in_features + out_features)


def lowrank_matmul(x, u, v, *, precision=None, preferred_element_type=None):
  """x @ U @ V, contracting the thin side first."""
  h = jnp.matmul(x, u, precision=precision, preferred_element_type=preferred_element_type)
  return jnp.matmul(h, v, precision=precision, preferred_element_type=preferred_element_type)


def lowrank_svd(W, rank: int):
  """Best rank-`rank` factors (U, V) of W in Frobenius norm, singular values split evenly."""
  if rank < 1:
    raise ValueError(f"rank must be >= 1, got {rank}.")
  W_np = np.asarray(W, dtype=np.float64)
  rank = min(rank, min(W_np.shape))
  u, s, vt = np.linalg.svd(W_np, full_matrices=False)
  root = np.sqrt(s[:rank])
  dtype = jnp.asarray(W).dtype
  return jnp.asarray(u[:, :rank] * root, dtype), jnp.asarray(root[:, None] * vt[:rank], dtype)
