"""Tensor sketches of dense and conv weights (Kasiviswanathan, Narodytska & Jin 2018).

A sketch matrix U (k x d) has iid entries +-1/sqrt(k), so E[U^T U] = I. It is
drawn once from a seed and never trained; only the sketches S are.

SK-FC, W (d1 = in, d2 = out), l pairs (U1_i: k x d1, U2_i: k x d2):
  S1_i = U1_i W (k x d2),  S2_i = W U2_i^T (d1 x k)
  W_hat = 1/(2l) sum_i (U1_i^T S1_i + S2_i U2_i)                  l k (d1 + d2) numbers
Stacking the l pairs, W_hat = 1/(2l) [U1^T | S2] @ [S1 ; U2]: a product of a
(d1, 2lk) and a (2lk, d2) matrix, so x @ W_hat is two GEMMs through 2lk numbers
per example and W is never formed.

SK-CONV, kernel K in HWIO layout (kh, kw, d_in, d_out), U1_i: k x d_out, U2_i: k x d_in:
  S1_i = K x_out U1_i (kh, kw, d_in, k),  S2_i = K x_in U2_i (kh, kw, k, d_out)
  K_hat = 1/(2l) sum_i (S1_i x_out U1_i^T + S2_i x_in U2_i^T)  l k kh kw (d_in + d_out)
Forward: conv to lk maps with the stacked S1 then expand them to d_out with U1;
plus project the input channels to lk with U2 and conv with the stacked S2.

Arrays are stacked over the l pairs: U1 (l, k, d), S1 (l, k, d2), S2 (l, d1, k), ...
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from tnjax.tensor import contract, execution
from tnjax.tensor import shapes as shapes_lib


def sign_matrices(key, num_sketches: int, sketch_size: int, dim: int, dtype=jnp.float32):
  """(num_sketches, sketch_size, dim) iid entries +-1/sqrt(sketch_size)."""
  signs = jax.random.rademacher(key, (num_sketches, sketch_size, dim), dtype=jnp.int8)
  return signs.astype(dtype) / jnp.sqrt(jnp.asarray(sketch_size, dtype))


class DenseSketch(NamedTuple):
  """SK-FC of a (d1, d2) weight: trained s1 (l, k, d2), s2 (l, d1, k); fixed u1 (l, k, d1), u2 (l, k, d2)."""

  s1: Any
  s2: Any
  u1: Any
  u2: Any

  def astype(self, dtype) -> "DenseSketch":
    return DenseSketch(*(a.astype(dtype) for a in self))


class ConvSketch(NamedTuple):
  """SK-CONV of an HWIO kernel: trained s1 (l, kh, kw, d_in, k), s2 (l, kh, kw, k, d_out);
  fixed u1 (l, k, d_out), u2 (l, k, d_in)."""

  s1: Any
  s2: Any
  u1: Any
  u2: Any

  def astype(self, dtype) -> "ConvSketch":
    return ConvSketch(*(a.astype(dtype) for a in self))


def check_sketch_sizes(num_sketches: int, sketch_size: int) -> None:
  if int(num_sketches) < 1 or int(sketch_size) < 1:
    raise ValueError(
      f"num_sketches (l) and sketch_size (k) must be >= 1, got l={num_sketches}, k={sketch_size}."
    )


def dense_sketch_num_params(d1: int, d2: int, num_sketches: int, sketch_size: int) -> int:
  """Trained numbers of SK-FC: l k (d1 + d2)."""
  return num_sketches * sketch_size * (d1 + d2)


def conv_sketch_num_params(kernel_shape, num_sketches: int, sketch_size: int) -> int:
  """Trained numbers of SK-CONV: l k kh kw (d_in + d_out)."""
  kh, kw, d_in, d_out = kernel_shape
  return num_sketches * sketch_size * kh * kw * (d_in + d_out)


def dense_sketch_ranks_for_budget(d1: int, d2: int, budget, num_sketches: int = 1) -> int:
  """The largest sketch size k with at most `budget` trained numbers (count or fraction), >= 1."""
  budget = shapes_lib.budget_count(budget, d1 * d2)
  return max(1, budget // (num_sketches * (d1 + d2)))


def conv_sketch_ranks_for_budget(kernel_shape, budget, num_sketches: int = 1) -> int:
  """The largest sketch size k with at most `budget` trained numbers (count or fraction), >= 1."""
  kh, kw, d_in, d_out = kernel_shape
  budget = shapes_lib.budget_count(budget, math.prod(kernel_shape))
  return max(1, budget // (num_sketches * kh * kw * (d_in + d_out)))


# --- SK-FC ---------------------------------------------------------------------


def _dense_factors(sk: DenseSketch):
  """(d1, 2lk) and (2lk, d2) matrices whose product is 2l W_hat."""
  l, k, d1 = sk.u1.shape
  left = jnp.concatenate(
    [
      jnp.transpose(sk.u1, (2, 0, 1)).reshape(d1, l * k),
      jnp.transpose(sk.s2, (1, 0, 2)).reshape(d1, l * k),
    ],
    axis=1,
  )
  right = jnp.concatenate([sk.s1.reshape(l * k, -1), sk.u2.reshape(l * k, -1)], axis=0)
  return left, right


def dense_sketch_to_dense(sk: DenseSketch, precision=None):
  """W_hat (d1, d2)."""
  left, right = _dense_factors(sk)
  return jnp.matmul(left, right, precision=precision) / (2 * sk.u1.shape[0])


def dense_sketch_matmul(x, sk: DenseSketch, precision=None, method: str = "auto"):
  """x @ W_hat for x (..., d1): through 2lk numbers per example ('factored', W_hat
  is never formed) or with W_hat rebuilt ('dense'); 'auto' lets tnjax.tensor.execution choose."""
  left, right = _dense_factors(sk)
  method = execution.choose(
    "dense_sketch",
    execution.two_factor_paths(
      execution.cost_batch(math.prod(x.shape[:-1])),
      left.shape[0],
      left.shape[1],
      right.shape[1],
      x.dtype.itemsize,
    ),
    method=method,
    apply=lambda name, x, *sk: dense_sketch_matmul(x, DenseSketch(*sk), precision, name),
    operands=(x,) + tuple(sk),
  )
  if method == "dense":
    return jnp.matmul(x, dense_sketch_to_dense(sk, precision).astype(x.dtype), precision=precision)
  hidden = jnp.matmul(x, left.astype(x.dtype), precision=precision)
  return jnp.matmul(hidden, right.astype(x.dtype), precision=precision) / (2 * sk.u1.shape[0])


def dense_sketch_from_dense(W, u1, u2) -> DenseSketch:
  """Sketches of a given W: S1_i = U1_i W, S2_i = W U2_i^T."""
  s1 = jnp.einsum("lkd,de->lke", u1, W)
  s2 = jnp.einsum("de,lke->ldk", W, u2)
  return DenseSketch(s1, s2, u1, u2)


# --- SK-CONV -------------------------------------------------------------------


def conv_sketch_to_dense(sk: ConvSketch):
  """K_hat (kh, kw, d_in, d_out)."""
  first = jnp.einsum("lhwik,lko->hwio", sk.s1, sk.u1)
  second = jnp.einsum("lki,lhwko->hwio", sk.u2, sk.s2)
  return (first + second) / (2 * sk.u1.shape[0])


def conv_sketch_from_dense(kernel, u1, u2) -> ConvSketch:
  """Sketches of a given HWIO kernel: S1_i = K x_out U1_i, S2_i = K x_in U2_i."""
  s1 = jnp.einsum("hwio,lko->lhwik", kernel, u1)
  s2 = jnp.einsum("hwio,lki->lhwko", kernel, u2)
  return ConvSketch(s1, s2, u1, u2)


def conv_sketch_conv(
  x,
  sk: ConvSketch,
  *,
  strides=(1, 1),
  padding=((0, 0), (0, 0)),
  dilation=(1, 1),
  precision=None,
  method: str = "auto",
):
  """conv(x, K_hat) for NHWC x.

  'factored' never forms K_hat: both halves are one convolution over the lk
  stacked maps (conv with S1 then a 1x1 expansion by U1; a 1x1 projection by U2
  then conv with S2). 'dense' rebuilds K_hat and runs one conv; 'auto' lets
  tnjax.tensor.execution choose.
  """
  l, kh, kw, d_in, k = sk.s1.shape
  d_out = sk.u1.shape[2]
  dtype = x.dtype
  conv_args = dict(strides=strides, padding=padding, dilation=dilation, precision=precision)
  out_hw = execution.conv_out_hw(x.shape[1:3], (kh, kw), strides, padding, dilation)
  method = execution.choose(
    "conv_sketch",
    execution.conv_sketch_paths(
      execution.cost_batch(x.shape[0]),
      x.shape[1:3],
      out_hw,
      (kh, kw, d_in, d_out),
      l * k,
      dtype.itemsize,
    ),
    method=method,
    apply=lambda name, x, *sk: conv_sketch_conv(x, ConvSketch(*sk), method=name, **conv_args),
    operands=(x,) + tuple(sk),
  )
  if method == "dense":
    return contract.dense_conv(x, conv_sketch_to_dense(sk).astype(dtype), **conv_args)

  def conv(inputs, kernel):
    return lax.conv_general_dilated(
      inputs,
      kernel.astype(dtype),
      strides,
      padding,
      rhs_dilation=dilation,
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=precision,
    )

  s1 = jnp.transpose(sk.s1, (1, 2, 3, 0, 4)).reshape(kh, kw, d_in, l * k)
  maps = conv(x, s1)  # (B, H', W', lk)
  first = jnp.matmul(maps, sk.u1.reshape(l * k, d_out).astype(dtype), precision=precision)
  u2 = jnp.transpose(sk.u2, (2, 0, 1)).reshape(d_in, l * k)
  projected = jnp.matmul(x, u2.astype(dtype), precision=precision)  # (B, H, W, lk)
  s2 = jnp.transpose(sk.s2, (1, 2, 0, 3, 4)).reshape(kh, kw, l * k, d_out)
  second = conv(projected, s2)
  return (first + second) / (2 * l)


def sketch_init_std(target_variance: float, num_sketches: int) -> float:
  """Std of the sketch entries so each entry of W_hat / K_hat has `target_variance`.

  Each of the 2l terms U^T S contributes k products of a +-1/sqrt(k) sign and an
  S entry, i.e. variance Var(S); the sum over 2l terms scaled by 1/(2l) has
  variance Var(S) / (2l).
  """
  return math.sqrt(2 * num_sketches * target_variance)
