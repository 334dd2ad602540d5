"""Tucker-2 convolution kernels (Kim et al. 2016), as pure functions.

An HWIO kernel K (kh, kw, S, N) keeps its spatial modes and compresses its
channel modes:  K[h, w, s, n] = sum_{a, b} C[h, w, a, b] U_in[s, a] U_out[n, b],
with core C (kh, kw, R3, R4), U_in (S, R3), U_out (N, R4). The convolution is
then three cheap ones: a 1x1 projection S -> R3, the core conv R3 -> R4, and a
1x1 expansion R4 -> N. Params S R3 + kh kw R3 R4 + R4 N.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from tnjax.tensor import checks
from tnjax.tensor import contract, execution
from tnjax.tensor import shapes as shapes_lib


class Tucker2Kernel(NamedTuple):
  """core (kh, kw, R3, R4), in_factor (S, R3), out_factor (N, R4)."""

  core: Any
  in_factor: Any
  out_factor: Any

  def astype(self, dtype) -> "Tucker2Kernel":
    return Tucker2Kernel(*(a.astype(dtype) for a in self))


def tucker2_num_params(kernel_shape, in_rank: int, out_rank: int) -> int:
  """S R3 + kh kw R3 R4 + R4 N."""
  kh, kw, n_in, n_out = kernel_shape
  return n_in * in_rank + kh * kw * in_rank * out_rank + out_rank * n_out


def tucker2_ranks_for_budget(kernel_shape, budget) -> tuple[int, int]:
  """(in_rank, out_rank) in proportion to the channels with at most `budget` numbers.

  `budget` is a count or a fraction of the dense kernel; ranks are at least 1.
  """
  kh, kw, n_in, n_out = kernel_shape
  budget = shapes_lib.budget_count(budget, math.prod(kernel_shape))
  ranks = lambda r: (r, min(n_out, max(1, round(r * n_out / n_in))))
  r = shapes_lib.largest_within(
    lambda r: tucker2_num_params(kernel_shape, *ranks(r)), budget, high=n_in
  )
  return ranks(r)


def check_tucker_ranks(n_in: int, n_out: int, in_rank: int, out_rank: int) -> None:
  if not 1 <= in_rank <= n_in:
    raise ValueError(f"in_rank={in_rank} must be between 1 and the {n_in} input channels.")
  if not 1 <= out_rank <= n_out:
    raise ValueError(f"out_rank={out_rank} must be between 1 and the {n_out} output channels.")


def tucker2_to_dense(t: Tucker2Kernel):
  """The HWIO kernel the factors stand for."""
  return jnp.einsum("hwab,sa,nb->hwsn", t.core, t.in_factor, t.out_factor)


def tucker2_from_dense(kernel, in_rank: int, out_rank: int) -> Tucker2Kernel:
  """Truncated HOSVD on the two channel modes; exact when the ranks are full.

  Runs on the host in float64 (a one-off at initialisation).
  """
  K = checks.require_finite(np.asarray(kernel, np.float64), "tucker2_from_dense: the kernel")
  kh, kw, n_in, n_out = K.shape
  check_tucker_ranks(n_in, n_out, in_rank, out_rank)
  in_unfolding = K.transpose(2, 0, 1, 3).reshape(n_in, -1)
  out_unfolding = K.transpose(3, 0, 1, 2).reshape(n_out, -1)
  # Full U: a rank above the unfolding's other side (a 1x1 conv's out_rank > in-channels)
  # still gets orthonormal columns; the extra ones meet a zero core, so it stays exact.
  u_in = np.linalg.svd(in_unfolding, full_matrices=True)[0][:, :in_rank]
  u_out = np.linalg.svd(out_unfolding, full_matrices=True)[0][:, :out_rank]
  core = np.einsum("hwsn,sa,nb->hwab", K, u_in, u_out)
  dtype = jnp.asarray(kernel).dtype
  return Tucker2Kernel(*(jnp.asarray(a, dtype) for a in (core, u_in, u_out)))


def tucker2_conv(
  x,
  t: Tucker2Kernel,
  *,
  strides=(1, 1),
  padding=((0, 0), (0, 0)),
  dilation=(1, 1),
  precision=None,
  method: str = "auto",
):
  """conv(x, K) for NHWC x.

  method: 'factored' (1x1 projection, core conv, 1x1 expansion: K is never
  formed), 'dense' (rebuild K, one conv) or 'auto' (tnjax.tensor.execution chooses).
  """
  dtype = x.dtype
  kh, kw, in_rank, out_rank = t.core.shape
  kernel_shape = (kh, kw, t.in_factor.shape[0], t.out_factor.shape[0])
  conv_args = dict(strides=strides, padding=padding, dilation=dilation, precision=precision)
  out_hw = execution.conv_out_hw(x.shape[1:3], (kh, kw), strides, padding, dilation)
  method = execution.choose(
    "tucker2",
    execution.tucker2_paths(
      execution.cost_batch(x.shape[0]),
      x.shape[1:3],
      out_hw,
      kernel_shape,
      in_rank,
      out_rank,
      dtype.itemsize,
    ),
    method=method,
    apply=lambda name, x, *t: tucker2_conv(x, Tucker2Kernel(*t), method=name, **conv_args),
    operands=(x,) + tuple(t),
  )
  if method == "dense":
    return contract.dense_conv(x, tucker2_to_dense(t).astype(dtype), **conv_args)
  projected = jnp.matmul(x, t.in_factor.astype(dtype), precision=precision)
  y = lax.conv_general_dilated(
    projected,
    t.core.astype(dtype),
    strides,
    padding,
    rhs_dilation=dilation,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    precision=precision,
  )
  return jnp.matmul(y, t.out_factor.T.astype(dtype), precision=precision)
