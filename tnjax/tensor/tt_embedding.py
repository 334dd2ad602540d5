"""TT-embeddings (Hrinchuk et al. 2020): an embedding table kept as a TT-matrix, looked up
row by row without ever forming the table.

The (V, F) table is the TT-matrix of tt.py with the vocabulary as its row modes
(v_1..v_d, prod >= V: the rows past V are padding) and the features as its column modes
(f_1..f_d). Row i is i's mixed-radix digits (i_1 most significant, as tt.py orders rows)
threaded through the cores: G_1[:, i_1] @ ... @ G_d[:, i_d], an (f_1 ... f_d) block, so a
lookup costs about F * r^2 per token instead of a (V, F) table in memory.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from tnjax.tensor.tt import TTMatrix


def digits(ids, vocab_shape) -> list:
  """The mixed-radix digits of integer ids over `vocab_shape`, most significant first."""
  out, rest = [], jnp.asarray(ids)
  for size in reversed(vocab_shape):
    out.append(rest % size)
    rest = rest // size
  return out[::-1]


def tt_embedding_lookup(table: TTMatrix, ids, *, precision=None):
  """Rows `ids` (any shape, ints < prod(in_shape)) of the TT table: (*ids.shape, F)."""
  ids = jnp.asarray(ids)
  flat = ids.reshape(-1)
  rows = None  # (tokens, f_1 * ... * f_k, r_k)
  for core, digit in zip(table.cores, digits(flat, table.in_shape)):
    picked = jnp.moveaxis(core, 1, 0)[digit]  # (tokens, r_{k-1}, f_k, r_k)
    if rows is None:
      rows = picked[:, 0]  # r_0 = 1
    else:
      rows = jnp.einsum("tfr,trgs->tfgs", rows, picked, precision=precision)
      rows = rows.reshape(rows.shape[0], -1, rows.shape[-1])
  features = math.prod(table.out_shape)
  return rows[..., 0].reshape(*ids.shape, features)
