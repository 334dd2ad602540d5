"""CPConv: the CPAC-Conv layer (Wang, Guo & Yue 2021) as a Flax NNX module."""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv, check_dense_kernel
from tnjax.nn.spec import CPSpec
from tnjax.tensor import cp


class CPConv(FactorizedConv):
  """conv(x, K) + b with K a rank-R CP kernel, never formed in the forward pass.

  Factors are iid normal with one std chosen so K (a sum of R products of four
  entries) has the variance of `spec.init` for the dense kernel.
  """

  spec_type = CPSpec

  def __init__(self, in_channels, out_channels, kernel_size, spec: CPSpec = CPSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_channels, out_channels, kernel_size, spec, rngs=rngs, **kwargs)
    variance = init_lib.target_variance(spec.init, self.fan_in, self.fan_out)
    std = init_lib.product_stds(variance, num_factors=4, summed_terms=spec.rank)
    sizes = (self.out_channels,) + self.kernel_size + (self.in_channels,)
    self.factors = nnx.List([nnx.Param(init_lib.normal(rngs.params(), (n, spec.rank), std,
                                                       self.param_dtype)) for n in sizes])
    self.fit_error = None

  def _factors(self, dtype=None):
    return cp.CPFactors(*(f[...] if dtype is None else f[...].astype(dtype) for f in self.factors))

  @property
  def rank(self) -> int:
    return self.factors[0].shape[1]

  @property
  def weight_params(self) -> int:
    return sum(math.prod(f.shape) for f in self.factors)

  @property
  def shape_description(self) -> str:
    return f"{super().shape_description} CP rank {self.rank}"

  def to_dense(self):
    return cp.cp_to_dense(self._factors())

  def _conv(self, x, padding):
    return cp.cp_conv(x, self._factors(x.dtype), strides=self.strides, padding=padding,
                      dilation=self.kernel_dilation, precision=self.precision)

  def feature_maps(self, x):
    """The R maps (..., H', W', R) of rank-1 terms before the out-channel mix (no bias).

    Map r is multiplied by column r of the out-channel factor to form the
    output; `significance()` says how much each map weighs.
    """
    batch_shape, x, pads = self._prepare(x)
    maps = cp.cp_feature_maps(x, self._factors(x.dtype), strides=self.strides, padding=pads,
                              dilation=self.kernel_dilation, precision=self.precision)
    return maps.reshape(batch_shape + maps.shape[1:])

  def significance(self):
    """Per rank component, the magnitude of its rank-1 kernel term."""
    return cp.cp_component_significance(self._factors())

  @classmethod
  def from_dense(cls, kernel, bias=None, spec: CPSpec = CPSpec(), *, n_iter: int = 500, **kwargs):
    """CP-ALS of a trained HWIO kernel; the relative error reached is `fit_error`."""
    kernel, (kh, kw, n_in, n_out) = check_dense_kernel(kernel)
    layer = cls(n_in, n_out, (kh, kw), spec, rngs=nnx.Rngs(0), **kwargs)
    # ALS works on the (N, X, Y, S) arrangement the factors are stored in.
    factors, layer.fit_error = cp.cp_als(jnp.transpose(kernel, (3, 0, 1, 2)), spec.rank, n_iter=n_iter)
    for param, value in zip(layer.factors, factors):
      param[...] = value.astype(layer.param_dtype)
    layer._set_bias(bias)
    return layer
