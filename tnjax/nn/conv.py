"""The dense convolution baseline, behind the same contract as the factorised ones."""

from __future__ import annotations

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv, nhwc_conv
from tnjax.nn.spec import DenseSpec


class Conv(FactorizedConv):
  """y = conv(x, K) + b with a full HWIO kernel, initialised by `spec.init`.

  Args: as FactorizedConv (in_channels, out_channels, kernel_size, spec:
  DenseSpec, strides, padding, kernel_dilation, dtype, param_dtype, precision, rngs).
  """

  spec_type = DenseSpec

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    std = init_lib.target_variance(spec.init, self.fan_in, self.fan_out) ** 0.5
    shape = self.kernel_size + (self.in_channels, self.out_channels)
    self.kernel = nnx.Param(init_lib.normal(rngs.params(), shape, std, self.param_dtype))

  @property
  def weight_params(self) -> int:
    return self.dense_weight_params

  def weights(self):
    return self.kernel[...]

  def to_dense(self):
    return self.kernel[...]

  def _conv(self, x, padding):
    return nhwc_conv(
      x,
      self.kernel[...].astype(x.dtype),
      self.strides,
      padding,
      self.kernel_dilation,
      self.precision,
    )

  def _fit(self, weight):
    self.kernel[...] = weight.astype(self.param_dtype)
