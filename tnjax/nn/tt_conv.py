"""TTConv: a convolution whose kernel is a TT-matrix (Garipov et al. 2016).

The HWIO kernel K (kh, kw, C_in, C_out), with C_in = prod(m_k) and C_out =
prod(n_k), is the TT-matrix of in_shape (kh*kw, m_1, ..., m_d) and out_shape
(1, n_1, ..., n_d) reshaped: the spatial part is the first core
(1, kh*kw, 1, r_0), the channel modes the cores after it. So every TT-matrix
routine (tt_matmul, tt_to_dense, tt_svd) applies unchanged.

Forward, chosen per static shape by estimated cost:
  * 'factored': extract the kh x kw patches and multiply them by the TT-matrix
    with tt_matmul (the kernel is never formed); wins for high compression;
  * 'dense': rebuild K (cheap: the size of one kernel) and call lax.conv, which
    wins wherever XLA's convolution beats the patch extraction.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv, check_dense_kernel
from tnjax.nn.spec import TTSpec
from tnjax.nn.tt_dense import resolve_tt_shapes
from tnjax.tensor import shapes, tt

METHODS = ("auto", "factored", "dense")


class TTConv(FactorizedConv):
  """conv(x, K) + b with K in TT form, the spatial core first.

  Channel modes come from spec.in_shape / out_shape (products must equal the
  channel counts) or are factorised automatically into `spec.order` modes.
  Cores are iid normal with one std that gives K the variance of `spec.init`.
  """

  spec_type = TTSpec

  def __init__(self, in_channels, out_channels, kernel_size, spec: TTSpec = TTSpec(), *,
               method: str = "auto", rngs: nnx.Rngs, **kwargs):
    super().__init__(in_channels, out_channels, kernel_size, spec, rngs=rngs, **kwargs)
    if method not in METHODS:
      raise ValueError(f"TTConv method={method!r} is unknown; choose one of {METHODS}.")
    self.method = method
    if spec.in_shape is None:  # channels are factorised exactly (no padding), 1s allowed
      self.in_shape = shapes.factorize(self.in_channels, spec.order, max_padding=0)
      self.out_shape = shapes.factorize(self.out_channels, spec.order, max_padding=0)
    else:
      self.in_shape, self.out_shape = resolve_tt_shapes(spec, self.in_channels, self.out_channels)
    ranks = (spec.ranks,) * (len(self.in_shape)) if isinstance(spec.ranks, int) else spec.ranks
    core_shapes = tt.tt_core_shapes(self.tt_in_shape, self.tt_out_shape, tuple(ranks))
    variance = init_lib.target_variance(spec.init, self.fan_in, self.fan_out)
    paths = math.prod(s[3] for s in core_shapes[:-1])
    std = init_lib.product_stds(variance, num_factors=len(core_shapes), summed_terms=paths)
    self.cores = nnx.List([nnx.Param(init_lib.normal(rngs.params(), s, std, self.param_dtype))
                           for s in core_shapes])

  @property
  def tt_in_shape(self) -> tuple[int, ...]:
    return (self.kernel_size[0] * self.kernel_size[1],) + tuple(self.in_shape)

  @property
  def tt_out_shape(self) -> tuple[int, ...]:
    return (1,) + tuple(self.out_shape)

  @property
  def weight_params(self) -> int:
    return sum(c.size for c in self.cores)

  @property
  def shape_description(self) -> str:
    ranks = "-".join(str(c.shape[0]) for c in list(self.cores)[1:])
    return (f"{super().shape_description} TT {'x'.join(map(str, self.in_shape))}->"
            f"{'x'.join(map(str, self.out_shape))} ranks {ranks}")

  def _core_values(self, dtype=None):
    return [c[...] if dtype is None else c[...].astype(dtype) for c in self.cores]

  def to_dense(self):
    kh, kw = self.kernel_size
    full = tt.tt_to_dense(self._core_values(), precision=self.precision)
    return full.reshape(kh, kw, self.in_channels, self.out_channels)

  def plan(self, batch: int, out_hw) -> str:
    """'factored' or 'dense' for `batch` images giving out_hw output maps."""
    if self.method != "auto":
      return self.method
    rows = batch * out_hw[0] * out_hw[1]
    shapes = [tuple(c.shape) for c in self.cores]
    factored = tt.tt_matmul_cost(shapes, rows) + 4 * rows * math.prod(self.tt_in_shape)
    dense = 2 * rows * self.fan_in * self.out_channels + 2 * self.dense_weight_params * max(
        s[3] for s in shapes)
    return "factored" if factored < dense else "dense"

  def _conv(self, x, padding):
    kh, kw = self.kernel_size
    dims = ("NHWC", "HWIO", "NHWC")
    out_hw = jax.eval_shape(lambda x: jax.lax.conv_general_dilated(
        x, jnp.zeros((kh, kw, self.in_channels, 1), x.dtype), self.strides, padding,
        rhs_dilation=self.kernel_dilation, dimension_numbers=dims), x).shape[1:3]
    if self.plan(x.shape[0], out_hw) == "dense":
      kernel = self.to_dense().astype(x.dtype)
      return jax.lax.conv_general_dilated(x, kernel, self.strides, padding,
                                          rhs_dilation=self.kernel_dilation,
                                          dimension_numbers=dims, precision=self.precision)
    # Patches come channel-major (C_in, kh*kw); the TT rows are spatial-major.
    patches = jax.lax.conv_general_dilated_patches(
        x, (kh, kw), self.strides, padding, rhs_dilation=self.kernel_dilation,
        dimension_numbers=dims, precision=self.precision)
    batch, height, width, _ = patches.shape
    patches = patches.reshape(batch, height, width, self.in_channels, kh * kw)
    patches = jnp.swapaxes(patches, -1, -2).reshape(batch, height, width, -1)
    return tt.tt_matmul(patches, self._core_values(x.dtype), precision=self.precision,
                        method="factored")

  @classmethod
  def from_dense(cls, kernel, bias=None, spec: TTSpec = TTSpec(), *, eps: float | None = None,
                 **kwargs):
    """TT-SVD of a trained HWIO kernel, ranks capped by spec.ranks (and eps if given)."""
    kernel, (kh, kw, n_in, n_out) = check_dense_kernel(kernel)
    layer = cls(n_in, n_out, (kh, kw), spec, rngs=nnx.Rngs(0), **kwargs)
    matrix = kernel.reshape(kh * kw * n_in, n_out)
    max_rank = (spec.ranks,) * len(layer.in_shape) if isinstance(spec.ranks, int) else spec.ranks
    cores = tt.tt_svd(matrix, layer.tt_in_shape, layer.tt_out_shape, max_rank=max_rank, eps=eps)
    layer.cores = nnx.List([nnx.Param(c.astype(layer.param_dtype)) for c in cores])
    layer._set_bias(bias)
    return layer
