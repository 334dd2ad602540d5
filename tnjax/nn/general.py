"""Factorised stand-ins for nnx.LinearGeneral and nnx.Einsum: a dense-family layer seen
through the reshapes that make their kernels matrices.

Both contract some input axes with a kernel and keep the rest. As a matrix, the kernel is
(contracted axes flattened, free axes flattened), in the kernel's own axis order; the
input's contracted axes are moved last and flattened, the factorised layer multiplies,
and its output is unflattened into the free axes (and, for Einsum, permuted into the
einsum's output order).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx

from tnjax.nn.base import place_output
from tnjax.nn.dense_base import FactorizedDense


class GeneralDense(nnx.Module):
  """nnx.LinearGeneral's y = x contracted over `axis` with a (*in_features, *out_features)
  kernel, the kernel a factorised (prod(in_features), prod(out_features)) matrix `inner`."""

  def __init__(self, inner: FactorizedDense, in_features, out_features, axis):
    self.inner = inner
    self.in_features, self.out_features = tuple(in_features), tuple(out_features)
    self.axis = tuple(axis)

  def __call__(self, x, out_sharding=None):
    # Sorted as nnx.LinearGeneral sorts them: the kernel's input axes meet the input's
    # contracted axes in the input's order, whatever order `axis` lists them in.
    axis = tuple(sorted(a % x.ndim for a in self.axis))
    x = jnp.moveaxis(x, axis, tuple(range(x.ndim - len(axis), x.ndim)))
    lead = x.shape[: x.ndim - len(axis)]
    y = self.inner(x.reshape(*lead, math.prod(self.in_features)))
    return place_output(y.reshape(*lead, *self.out_features), out_sharding)

  def to_linear_general(self) -> nnx.LinearGeneral:
    """The plain nnx.LinearGeneral computing the same (the kernel formed)."""
    inner = self.inner
    plain = nnx.LinearGeneral(
      self.in_features,
      self.out_features,
      axis=self.axis,
      use_bias=inner.bias is not None,
      dtype=inner.dtype,
      param_dtype=inner.param_dtype,
      precision=inner.precision,
      rngs=nnx.Rngs(0),
    )
    plain.kernel[...] = inner.to_dense().reshape(self.in_features + self.out_features)
    if inner.bias is not None:
      plain.bias[...] = inner.bias[...].reshape(self.out_features)
    return plain


def einsum_layout(einsum_str: str, kernel_shape) -> dict:
  """How an nnx.Einsum's kernel is a matrix: its contracted and free axes (letters), and
  the input's other axes. Refuses what a matrix cannot stand for, in one line."""
  text = einsum_str.replace(" ", "")
  if "..." in text or "->" not in text or text.count(",") != 1:
    raise ValueError(
      f"nnx.Einsum {einsum_str!r}: only explicit two-operand equations 'lhs,rhs->out' "
      "(no '...') can be compressed."
    )
  operands, out = text.split("->")
  lhs, rhs = operands.split(",")
  repeated = sorted({c for c in rhs if rhs.count(c) > 1})
  if repeated:
    raise ValueError(
      f"nnx.Einsum {einsum_str!r}: the kernel repeats axis {', '.join(repeated)} (a diagonal), "
      "which a (contracted, free) matrix cannot stand for."
    )
  if len(rhs) != len(kernel_shape):
    raise ValueError(
      f"nnx.Einsum {einsum_str!r}: the kernel operand has {len(rhs)} axes, the kernel "
      f"{len(kernel_shape)} ({tuple(kernel_shape)})."
    )
  contracted = "".join(c for c in rhs if c in lhs and c not in out)
  free = "".join(c for c in rhs if c in out and c not in lhs)
  shared = "".join(c for c in rhs if c in lhs and c in out)
  lonely = "".join(c for c in rhs if c not in lhs and c not in out) + "".join(
    c for c in lhs if c not in rhs and c not in out
  )
  if shared or lonely or not contracted or not free:
    raise ValueError(
      f"nnx.Einsum {einsum_str!r}: its kernel must split into contracted axes (in the input, "
      "not the output) and free ones (in the output only); "
      + "; ".join(
        problem
        for problem, found in (
          (f"'{shared}' is batched over the kernel", shared),
          (f"'{lonely}' is summed alone", lonely),
          ("nothing is contracted", not contracted),
          ("nothing is free", not free),
        )
        if found
      )
      + "."
    )
  others = "".join(c for c in lhs if c not in contracted)
  sizes = dict(zip(rhs, kernel_shape))
  return {
    "lhs": lhs,
    "rhs": rhs,
    "out": out,
    "contracted": contracted,
    "free": free,
    "others": others,
    "matrix_shape": (
      math.prod(sizes[c] for c in contracted),
      math.prod(sizes[c] for c in free),
    ),
    "free_shape": tuple(sizes[c] for c in free),
  }


def einsum_matrix(kernel, layout: dict):
  """The kernel as its (contracted, free) matrix."""
  order = [layout["rhs"].index(c) for c in layout["contracted"] + layout["free"]]
  return jnp.transpose(kernel, order).reshape(layout["matrix_shape"])


class EinsumDense(nnx.Module):
  """nnx.Einsum's y = einsum(einsum_str, x, kernel) (+ bias), the kernel a factorised
  (contracted, free) matrix `inner` (see einsum_layout); the bias is the source's."""

  def __init__(self, inner: FactorizedDense, einsum_str: str, kernel_shape, bias=None):
    self.inner = inner
    self.einsum_str, self.kernel_shape = einsum_str, tuple(kernel_shape)
    self.layout = einsum_layout(einsum_str, kernel_shape)
    self.bias = nnx.Param(jnp.asarray(bias)) if bias is not None else None

  def __call__(self, x, einsum_str=None, out_sharding=None):
    if einsum_str is not None and einsum_str.replace(" ", "") != self.einsum_str.replace(" ", ""):
      raise ValueError(
        f"this compressed nnx.Einsum computes {self.einsum_str!r}; called with {einsum_str!r}, "
        "which its factorised kernel does not stand for."
      )
    layout = self.layout
    x = jnp.einsum(f"{layout['lhs']}->{layout['others']}{layout['contracted']}", x)
    lead = x.shape[: len(layout["others"])]
    y = self.inner(x.reshape(*lead, layout["matrix_shape"][0]))
    y = y.reshape(*lead, *layout["free_shape"])
    y = jnp.einsum(f"{layout['others']}{layout['free']}->{layout['out']}", y)
    if self.bias is not None:
      sizes = dict(zip(layout["rhs"], self.kernel_shape))
      shape = [sizes[c] if c in layout["free"] else 1 for c in layout["out"]]
      y = y + jnp.reshape(self.bias[...], shape).astype(y.dtype)
    return place_output(y, out_sharding)

  def to_einsum(self) -> nnx.Einsum:
    """The plain nnx.Einsum computing the same (the kernel formed)."""
    layout, inner = self.layout, self.inner
    plain = nnx.Einsum(
      self.einsum_str,
      self.kernel_shape,
      self.bias.shape if self.bias is not None else None,
      dtype=inner.dtype,
      param_dtype=inner.param_dtype,
      precision=inner.precision,
      rngs=nnx.Rngs(0),
    )
    sizes = dict(zip(layout["rhs"], self.kernel_shape))
    matrix = inner.to_dense().reshape([sizes[c] for c in layout["contracted"] + layout["free"]])
    order = [(layout["contracted"] + layout["free"]).index(c) for c in layout["rhs"]]
    plain.kernel[...] = jnp.transpose(matrix, order)
    if self.bias is not None:
      plain.bias[...] = self.bias[...]
    return plain
