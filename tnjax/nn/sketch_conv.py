"""SketchConv: SK-CONV (Kasiviswanathan, Narodytska & Jin 2018); see sketch_dense.py."""

from __future__ import annotations

import jax
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv
from tnjax.nn.sketch_dense import SketchMatrix, sign_key, warn_if_larger
from tnjax.nn.sketch_dense import SketchSpec
from tnjax.tensor import sketch


class SketchConv(FactorizedConv):
  """conv(x, K_hat) + b with K_hat the SK-CONV estimate; K is never formed.

  Trained: S1 (l, kh, kw, in, k) and S2 (l, kh, kw, k, out): l k kh kw (in + out)
  numbers, normal with the std that gives K_hat the variance of `spec.init`.
  `from_dense` sketches a trained kernel: S1_i = K x_out U1_i, S2_i = K x_in U2_i.

  Args: as FactorizedConv (in_channels, out_channels, kernel_size, spec:
  SketchSpec, strides, padding, kernel_dilation, dtype, param_dtype, precision, rngs).
  """

  spec_type = SketchSpec

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    l, k = spec.num_sketches, spec.sketch_size
    kh, kw = self.kernel_size
    key1, key2 = jax.random.split(sign_key(spec, rngs))
    self.u1 = SketchMatrix(sketch.sign_matrices(key1, l, k, self.out_channels, self.param_dtype))
    self.u2 = SketchMatrix(sketch.sign_matrices(key2, l, k, self.in_channels, self.param_dtype))
    variance = init_lib.target_variance(spec.init, self.fan_in, self.fan_out)
    std = sketch.sketch_init_std(variance, l)
    normal = lambda shape: nnx.Param(init_lib.normal(rngs.params(), shape, std, self.param_dtype))
    self.s1 = normal((l, kh, kw, self.in_channels, k))
    self.s2 = normal((l, kh, kw, k, self.out_channels))
    warn_if_larger(self)

  @property
  def weight_params(self) -> int:
    return self.s1.size + self.s2.size

  @property
  def shape_description(self) -> str:
    spec = self.spec
    return f"{super().shape_description} sketch l={spec.num_sketches} k={spec.sketch_size}"

  def weights(self) -> sketch.ConvSketch:
    return sketch.ConvSketch(self.s1[...], self.s2[...], self.u1[...], self.u2[...])

  def to_dense(self):
    return sketch.conv_sketch_to_dense(self.weights())

  def _conv(self, x, padding):
    return sketch.conv_sketch_conv(
      x,
      self.weights().astype(x.dtype),
      **self._conv_options(padding),
    )

  def _fit(self, weight):
    w = sketch.conv_sketch_from_dense(weight.astype(self.param_dtype), self.u1[...], self.u2[...])
    self.s1[...], self.s2[...] = w.s1, w.s2
