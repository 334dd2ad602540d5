"""TTConv: a convolution whose kernel is a TT-matrix (Garipov et al. 2016).

The HWIO kernel K (kh, kw, C_in, C_out), with C_in = prod(m_k) and C_out =
prod(n_k), is the TT-matrix of in_shape (kh*kw, m_1, ..., m_d) and out_shape
(1, n_1, ..., n_d) reshaped: the spatial part is the first core
(1, kh*kw, 1, r_0), the channel modes the cores after it. So every TT-matrix
routine (tt_matmul, tt_to_dense, tt_from_dense) applies unchanged.

Forward, chosen per static shape by tnjax.tensor.execution (or `spec.method`):
  * 'factored': extract the kh x kw patches and multiply them by the TT-matrix
    with tt_matmul (the kernel is never formed); wins for high compression;
  * 'dense': rebuild K (cheap: the size of one kernel) and call lax.conv, which
    wins wherever XLA's convolution beats the patch extraction.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv
from tnjax.nn.tt_dense import TTSpec
from tnjax.tensor import execution, shapes, tt


class TTConv(FactorizedConv):
  """conv(x, K) + b with K in TT form, the spatial core first.

  Channel modes come from spec.in_shape / out_shape (products must equal the
  channel counts) or are factorised automatically into `spec.order` modes.
  Cores are iid normal with one std that gives K the variance of `spec.init`.
  `from_dense` is TT-SVD of the kernel (fit option `eps`).

  Args: as FactorizedConv (in_channels, out_channels, kernel_size, spec: TTSpec,
  strides, padding, kernel_dilation, dtype, param_dtype, precision, rngs).
  """

  spec_type = TTSpec
  fit_options = ("eps",)

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    if spec.in_shape is None:  # channels are factorised exactly (no padding), 1s allowed
      self.in_shape = shapes.factorize(self.in_channels, spec.order, max_padding=0)
      self.out_shape = shapes.factorize(self.out_channels, spec.order, max_padding=0)
    else:
      self.in_shape, self.out_shape = shapes.resolve_tt_shapes(
        self.in_channels, self.out_channels, spec.in_shape, spec.out_shape, owner="TTSpec"
      )
    ranks = (spec.ranks,) * (len(self.in_shape)) if isinstance(spec.ranks, int) else spec.ranks
    core_shapes = tt.tt_core_shapes(
      self.tt_in_shape, self.tt_out_shape, tuple(ranks), clip=spec.clip_ranks
    )
    variance = init_lib.target_variance(spec.init, self.fan_in, self.fan_out)
    paths = math.prod(s[3] for s in core_shapes[:-1])
    std = init_lib.product_stds(variance, num_factors=len(core_shapes), summed_terms=paths)
    self.cores = nnx.List(
      [nnx.Param(init_lib.normal(rngs.params(), s, std, self.param_dtype)) for s in core_shapes]
    )

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
    return (
      f"{super().shape_description} TT {'x'.join(map(str, self.in_shape))}->"
      f"{'x'.join(map(str, self.out_shape))} ranks {ranks}"
    )

  def weights(self) -> tt.TTMatrix:
    """The kernel as a TT-matrix of in_shape (kh*kw, m_1..m_d), out_shape (1, n_1..n_d)."""
    return tt.TTMatrix(tuple(c[...] for c in self.cores))

  def to_dense(self):
    kh, kw = self.kernel_size
    full = tt.tt_to_dense(self.weights(), precision=self.precision)
    return full.reshape(kh, kw, self.in_channels, self.out_channels)

  def _conv(self, x, padding):
    kh, kw = self.kernel_size
    out_hw = execution.conv_out_hw(
      x.shape[1:3], (kh, kw), self.strides, padding, self.kernel_dilation
    )
    cores = tuple(self.weights().astype(x.dtype).cores)
    core_shapes = tuple(tuple(c.shape) for c in cores)
    rows = x.shape[0] * out_hw[0] * out_hw[1]
    paths = execution.tt_conv_paths(
      x.shape[0],
      x.shape[1:3],
      out_hw,
      (kh, kw),
      self.in_channels,
      self.out_channels,
      core_shapes,
      tt.plan_tt_split(core_shapes, rows),
      x.dtype.itemsize,
    )
    method = execution.choose(
      "tt_conv",
      paths,
      method=self.spec.method,
      apply=lambda name, x, *cores: self._conv_path(name, x, cores, padding),
      operands=(x,) + cores,
    )
    return self._conv_path(method, x, cores, padding)

  def _conv_path(self, method, x, cores, padding):
    kh, kw = self.kernel_size
    dims = ("NHWC", "HWIO", "NHWC")
    if method == "dense":
      kernel = tt.tt_to_dense(tt.TTMatrix(cores), precision=self.precision)
      kernel = kernel.reshape(kh, kw, self.in_channels, self.out_channels)
      return jax.lax.conv_general_dilated(
        x,
        kernel,
        self.strides,
        padding,
        rhs_dilation=self.kernel_dilation,
        dimension_numbers=dims,
        precision=self.precision,
      )
    # Patches come channel-major (C_in, kh*kw); the TT rows are spatial-major.
    patches = jax.lax.conv_general_dilated_patches(
      x,
      (kh, kw),
      self.strides,
      padding,
      rhs_dilation=self.kernel_dilation,
      dimension_numbers=dims,
      # this lax op takes lax.Precision only, not the strings nnx layers accept ('highest')
      precision=jax.lax.Precision(p) if isinstance(p := self.precision, str) else p,
    )
    batch, height, width, _ = patches.shape
    patches = patches.reshape(batch, height, width, self.in_channels, kh * kw)
    patches = jnp.swapaxes(patches, -1, -2).reshape(batch, height, width, -1)
    return tt.tt_matmul(patches, tt.TTMatrix(cores), precision=self.precision, method="factored")

  def tt_problem(self, weight):
    """(matrix, in modes, out modes) that TT-SVD factors: the kernel as (kh*kw*in, out)."""
    kh, kw = self.kernel_size
    matrix = weight.reshape(kh * kw * self.in_channels, self.out_channels)
    return matrix, self.tt_in_shape, self.tt_out_shape

  def _fit(self, weight, eps: float | None = None):
    """TT-SVD of the kernel's (kh*kw*in, out) matrix, ranks capped by the spec's."""
    ranks = self.spec.ranks
    max_rank = (ranks,) * len(self.in_shape) if isinstance(ranks, int) else ranks
    w = tt.tt_from_dense(*self.tt_problem(weight), max_rank=max_rank, eps=eps)
    self.cores = nnx.List([nnx.Param(c.astype(self.param_dtype)) for c in w.cores])
    self.spec = dataclasses.replace(self.spec, ranks=w.ranks[1:-1] or self.spec.ranks)
