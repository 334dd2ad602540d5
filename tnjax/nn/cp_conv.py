"""CPConv: the CPAC-Conv layer (Wang, Guo & Yue 2021) as a Flax NNX module."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv
from tnjax.nn.cp_dense import CPSpec
from tnjax.tensor import cp


class CPConv(FactorizedConv):
  """conv(x, K) + b with K a rank-R CP kernel, never formed in the forward pass.

  Factors are iid normal with one std chosen so K (a sum of R products of four
  entries) has the variance of `spec.init` for the dense kernel. `from_dense`
  is CP-ALS (fit option `n_iter`).

  Args: as FactorizedConv (in_channels, out_channels, kernel_size, spec:
  CPSpec, strides, padding, kernel_dilation, dtype, param_dtype, precision, rngs).
  """

  spec_type = CPSpec
  fit_options = ("n_iter",)

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    variance = init_lib.target_variance(spec.init, self.fan_in, self.fan_out)
    std = init_lib.product_stds(variance, num_factors=4, summed_terms=spec.rank)
    sizes = (self.out_channels,) + self.kernel_size + (self.in_channels,)
    factors = [init_lib.normal(rngs.params(), (n, spec.rank), std, self.param_dtype) for n in sizes]
    if spec.factor_init == "cp_als":
      factors = self._cp_als_of_a_random_kernel(rngs.params(), factors)
    self.factors = nnx.List([nnx.Param(f) for f in factors])

  def _cp_als_of_a_random_kernel(self, key, fallback):
    """CPAC-Conv's init: CP-ALS of randn(kh, kw, in, out) / (kh kw). Under an abstract
    trace (nnx.eval_shape) only shapes exist, so the same-shaped `fallback` stands in."""
    kh, kw = self.kernel_size
    shape = (kh, kw, self.in_channels, self.out_channels)
    kernel = jax.random.normal(key, shape, jnp.float32) / (kh * kw)
    if isinstance(kernel, jax.core.Tracer):
      return fallback
    w = cp.cp_kernel_from_dense(kernel, self.spec.rank, n_iter=100)
    return [jnp.asarray(f, self.param_dtype) for f in w]

  @property
  def rank(self) -> int:
    return self.factors[0].shape[1]

  @property
  def weight_params(self) -> int:
    return sum(math.prod(f.shape) for f in self.factors)

  @property
  def shape_description(self) -> str:
    return f"{super().shape_description} CP rank {self.rank}"

  def weights(self) -> cp.CPKernel:
    return cp.CPKernel(*(f[...] for f in self.factors))

  def to_dense(self):
    return cp.cp_kernel_to_dense(self.weights())

  def _conv(self, x, padding):
    return cp.cp_kernel_conv(
      x,
      self.weights().astype(x.dtype),
      **self._conv_options(padding),
    )

  def feature_maps(self, x):
    """The R maps (..., H', W', R) of rank-1 terms before the out-channel mix (no bias).

    Map r is multiplied by column r of the out-channel factor to form the
    output; `significance()` says how much each map weighs.
    """
    batch_shape, x, pads = self._prepare(x)
    maps = cp.cp_feature_maps(
      x,
      self.weights().astype(x.dtype),
      strides=self.strides,
      padding=pads,
      dilation=self.kernel_dilation,
      precision=self.precision,
    )
    return maps.reshape(batch_shape + maps.shape[1:])

  def significance(self, reading: str = "norms"):
    """One number per rank component (tnjax.tensor.cp_component_significance):
    'norms' the magnitude of its rank-1 kernel term; 'in_factor' the paper's reading."""
    return cp.cp_component_significance(self.weights(), reading)

  def _fit(self, weight, n_iter: int = 500):
    w = cp.cp_kernel_from_dense(weight, self.rank, n_iter=n_iter)
    for param, value in zip(self.factors, w):
      param[...] = value.astype(self.param_dtype)
