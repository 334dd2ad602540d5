"""The dense convolution baseline, behind the same contract as the factorised ones."""

from __future__ import annotations

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv, check_dense_kernel, conv_reference
from tnjax.nn.spec import DenseSpec


class Conv(FactorizedConv):
  """y = conv(x, K) + b with a full HWIO kernel, initialised by `spec.init`."""

  spec_type = DenseSpec

  def __init__(self, in_channels, out_channels, kernel_size, spec: DenseSpec = DenseSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_channels, out_channels, kernel_size, spec, rngs=rngs, **kwargs)
    std = init_lib.target_variance(spec.init, self.fan_in, self.fan_out) ** 0.5
    shape = self.kernel_size + (self.in_channels, self.out_channels)
    self.kernel = nnx.Param(init_lib.normal(rngs.params(), shape, std, self.param_dtype))

  @property
  def weight_params(self) -> int:
    return self.dense_weight_params

  def to_dense(self):
    return self.kernel[...]

  def _conv(self, x, padding):
    return conv_reference(x, self.kernel[...].astype(x.dtype), self.strides, padding,
                          self.kernel_dilation, self.precision)

  @classmethod
  def from_dense(cls, kernel, bias=None, spec: DenseSpec = DenseSpec(), **kwargs):
    kernel, (kh, kw, n_in, n_out) = check_dense_kernel(kernel)
    layer = cls(n_in, n_out, (kh, kw), spec, rngs=nnx.Rngs(0), **kwargs)
    layer.kernel[...] = kernel.astype(layer.param_dtype)
    layer._set_bias(bias)
    return layer
