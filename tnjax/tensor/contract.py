"""Einsum with a contraction order planned once per static shape.

`jnp.einsum` asks opt_einsum for a path every time it is traced. A layer is
traced once per jit, but eager calls, benchmarks and `jax.eval_shape` re-trace;
caching the plan keyed on (equation, shapes) makes planning a one-off.

`gemm` is a 2-D matrix product whose gradient stays fast on XLA's CPU backend.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import opt_einsum
from jax import lax


@functools.lru_cache(maxsize=4096)
def plan_path(
  equation: str, shapes: tuple[tuple[int, ...], ...], strategy: str = "optimal"
) -> tuple[tuple[int, ...], ...]:
  """Contraction path (pairs of operand positions) minimising FLOPs."""
  # 'optimal' is exhaustive; beyond ~8 operands it explodes, so fall back to 'dp'.
  if strategy == "optimal" and len(shapes) > 8:
    strategy = "dp"
  path, _ = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=strategy)
  return tuple(tuple(step) for step in path)


def path_info(equation: str, *shapes: Sequence[int], strategy: str = "optimal"):
  """opt_einsum's report (FLOPs, largest intermediate) for a planned contraction."""
  shapes = tuple(tuple(s) for s in shapes)
  path = plan_path(equation, shapes, strategy)
  _, info = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=list(path))
  return info


def planned_einsum(
  equation: str,
  *operands,
  precision: Any = None,
  preferred_element_type: Any = None,
  strategy: str = "optimal",
):
  """`jnp.einsum` using a cached, FLOP-optimal contraction path."""
  shapes = tuple(tuple(op.shape) for op in operands)
  path = plan_path(equation, shapes, strategy)
  return jnp.einsum(
    equation,
    *operands,
    optimize=list(path),
    precision=precision,
    preferred_element_type=preferred_element_type,
  )


def dense_conv(x, kernel, *, strides, padding, dilation, precision):
  """lax.conv of NHWC x with an HWIO kernel: the 'dense' path of every conv format."""
  return jax.lax.conv_general_dilated(
    x,
    kernel,
    window_strides=strides,
    padding=padding,
    rhs_dilation=dilation,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    precision=precision,
  )


# --- 2-D GEMM with a backward pass XLA's CPU backend runs fast ------------------
# Autodiff of a @ b gives the gradient of b as a contraction over the rows of
# a and g (a.T @ g). XLA on CPU hands a product whose left operand is
# contracted on its first axis to a slower kernel (Eigen, not the multi-threaded
# GEMM library the other forms go to): about 3x slower for the TT layer's
# shapes, where it cost more than the whole forward pass. Transposing the
# smaller operand first keeps every product in the fast form. Beyond
# _MAX_TRANSPOSED_ELEMENTS the transpose itself (memory-bound, out of cache) costs
# more than it saves, so the plain form is kept.
_MAX_TRANSPOSED_ELEMENTS = 1 << 20


def _dot(a, b, contracting, precision, preferred_element_type):
  return lax.dot_general(
    a,
    b,
    (contracting, ((), ())),
    precision=precision,
    preferred_element_type=preferred_element_type,
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _cpu_gemm(a, b, precision, preferred_element_type):
  return _dot(a, b, ((1,), (0,)), precision, preferred_element_type)


def _cpu_gemm_forward(a, b, precision, preferred_element_type):
  return _cpu_gemm(a, b, precision, preferred_element_type), (a, b)


def _cpu_gemm_backward(precision, preferred_element_type, residuals, g):
  a, b = residuals
  grad_a = _dot(g, b, ((1,), (1,)), precision, preferred_element_type)
  # The barriers stop XLA folding the transposes back into the product.
  if min(a.size, g.size) > _MAX_TRANSPOSED_ELEMENTS:
    grad_b = _dot(a, g, ((0,), (0,)), precision, preferred_element_type)
  elif a.size <= g.size:
    grad_b = _dot(lax.optimization_barrier(a.T), g, ((1,), (0,)), precision, preferred_element_type)
  else:
    grad_b_t = _dot(
      lax.optimization_barrier(g.T), a, ((1,), (0,)), precision, preferred_element_type
    )
    grad_b = lax.optimization_barrier(grad_b_t).T
  return grad_a.astype(a.dtype), grad_b.astype(b.dtype)


_cpu_gemm.defvjp(_cpu_gemm_forward, _cpu_gemm_backward)


def gemm(a, b, *, precision: Any = None, preferred_element_type: Any = None):
  """a @ b for 2-D arrays, with a backward pass of fast GEMMs on CPU.

  On the CPU backend the gradient is a custom VJP (see above), so forward-mode
  autodiff (jax.jvp, jacfwd) is not available there; other backends use a plain
  dot_general.
  """
  if jax.default_backend() == "cpu":
    return _cpu_gemm(a, b, precision, preferred_element_type)
  return _dot(a, b, ((1,), (0,)), precision, preferred_element_type)
