"""SketchDense / SketchConv: SK-FC and SK-CONV (Kasiviswanathan, Narodytska & Jin 2018).

The sign matrices U are drawn once and kept as `SketchMatrix` variables: not
nnx.Param, so gradients and the optimizer skip them, but part of the model state,
so a checkpoint restores them bit for bit. Only the sketches S are trained, and
only they count in `num_params`.
"""

from __future__ import annotations

import warnings

import jax
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.base import FactorizedDense, check_dense_weight
from tnjax.nn.conv_base import FactorizedConv, check_dense_kernel
from tnjax.nn.spec import SketchSpec
from tnjax.tensor import sketch


class SketchMatrix(nnx.Variable):
  """A fixed random sign matrix: saved and restored with the model, never trained."""


def _sign_key(spec: SketchSpec, rngs: nnx.Rngs):
  return jax.random.key(spec.seed) if spec.seed is not None else rngs.params()


def _warn_if_larger(layer) -> None:
  if layer.weight_params > layer.dense_weight_params:
    spec = layer.spec
    warnings.warn(
        f"{type(layer).__name__} {layer.shape_description}: l={spec.num_sketches}, "
        f"k={spec.sketch_size} give {layer.weight_params:,} parameters, more than the dense "
        f"layer's {layer.dense_weight_params:,}; lower sketch_size or num_sketches.", stacklevel=3)


class SketchDense(FactorizedDense):
  """y = x @ W_hat + b with W_hat = 1/(2l) sum_i (U1_i^T S1_i + S2_i U2_i); W is never formed.

  Trained: S1 (l, k, out), S2 (l, in, k): l k (in + out) numbers. Their entries
  are normal with the std that gives W_hat the variance of `spec.init`.
  """

  spec_type = SketchSpec

  def __init__(self, in_features: int, out_features: int, spec: SketchSpec = SketchSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_features, out_features, spec, rngs=rngs, **kwargs)
    l, k = spec.num_sketches, spec.sketch_size
    key1, key2 = jax.random.split(_sign_key(spec, rngs))
    self.u1 = SketchMatrix(sketch.sign_matrices(key1, l, k, self.in_features, self.param_dtype))
    self.u2 = SketchMatrix(sketch.sign_matrices(key2, l, k, self.out_features, self.param_dtype))
    variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
    std = sketch.sketch_init_std(variance, l)
    self.s1 = nnx.Param(init_lib.normal(rngs.params(), (l, k, self.out_features), std,
                                        self.param_dtype))
    self.s2 = nnx.Param(init_lib.normal(rngs.params(), (l, self.in_features, k), std,
                                        self.param_dtype))
    _warn_if_larger(self)

  def _sketch(self, dtype=None):
    values = (self.s1[...], self.s2[...], self.u1[...], self.u2[...])
    return sketch.DenseSketch(*(v if dtype is None else v.astype(dtype) for v in values))

  @property
  def weight_params(self) -> int:
    return self.s1.size + self.s2.size

  @property
  def shape_description(self) -> str:
    return f"{self.in_features}x{self.out_features} sketch l={self.spec.num_sketches} k={self.spec.sketch_size}"

  def _matmul(self, x):
    return sketch.dense_sketch_matmul(x, self._sketch(x.dtype), precision=self.precision)

  def to_dense(self):
    return sketch.dense_sketch_to_dense(self._sketch(), precision=self.precision)

  @classmethod
  def from_dense(cls, W, b=None, spec: SketchSpec = SketchSpec(), *, rngs: nnx.Rngs | None = None,
                 **kwargs):
    """Sketches of a trained weight: S1_i = U1_i W, S2_i = W U2_i^T (unbiased: E[W_hat] = W)."""
    W, n_in, n_out = check_dense_weight(W)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      layer = cls(n_in, n_out, spec, rngs=rngs or nnx.Rngs(0), **kwargs)
    _warn_if_larger(layer)
    sk = sketch.dense_sketch_from_dense(W.astype(layer.param_dtype), layer.u1[...], layer.u2[...])
    layer.s1[...], layer.s2[...] = sk.s1, sk.s2
    layer._set_bias(b)
    return layer


class SketchConv(FactorizedConv):
  """conv(x, K_hat) + b with K_hat the SK-CONV estimate; K is never formed.

  Trained: S1 (l, kh, kw, in, k) and S2 (l, kh, kw, k, out): l k kh kw (in + out)
  numbers, normal with the std that gives K_hat the variance of `spec.init`.
  """

  spec_type = SketchSpec

  def __init__(self, in_channels, out_channels, kernel_size, spec: SketchSpec = SketchSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_channels, out_channels, kernel_size, spec, rngs=rngs, **kwargs)
    l, k = spec.num_sketches, spec.sketch_size
    kh, kw = self.kernel_size
    key1, key2 = jax.random.split(_sign_key(spec, rngs))
    self.u1 = SketchMatrix(sketch.sign_matrices(key1, l, k, self.out_channels, self.param_dtype))
    self.u2 = SketchMatrix(sketch.sign_matrices(key2, l, k, self.in_channels, self.param_dtype))
    variance = init_lib.target_variance(spec.init, self.fan_in, self.fan_out)
    std = sketch.sketch_init_std(variance, l)
    self.s1 = nnx.Param(init_lib.normal(rngs.params(), (l, kh, kw, self.in_channels, k), std,
                                        self.param_dtype))
    self.s2 = nnx.Param(init_lib.normal(rngs.params(), (l, kh, kw, k, self.out_channels), std,
                                        self.param_dtype))
    _warn_if_larger(self)

  def _sketch(self, dtype=None):
    values = (self.s1[...], self.s2[...], self.u1[...], self.u2[...])
    return sketch.ConvSketch(*(v if dtype is None else v.astype(dtype) for v in values))

  @property
  def weight_params(self) -> int:
    return self.s1.size + self.s2.size

  @property
  def shape_description(self) -> str:
    return f"{super().shape_description} sketch l={self.spec.num_sketches} k={self.spec.sketch_size}"

  def to_dense(self):
    return sketch.conv_sketch_to_dense(self._sketch())

  def _conv(self, x, padding):
    return sketch.conv_sketch_apply(x, self._sketch(x.dtype), strides=self.strides, padding=padding,
                                    dilation=self.kernel_dilation, precision=self.precision)

  @classmethod
  def from_dense(cls, kernel, bias=None, spec: SketchSpec = SketchSpec(), *,
                 rngs: nnx.Rngs | None = None, **kwargs):
    """Sketches of a trained HWIO kernel (S1_i = K x_out U1_i, S2_i = K x_in U2_i)."""
    kernel, (kh, kw, n_in, n_out) = check_dense_kernel(kernel)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      layer = cls(n_in, n_out, (kh, kw), spec, rngs=rngs or nnx.Rngs(0), **kwargs)
    _warn_if_larger(layer)
    sk = sketch.conv_sketch_from_dense(kernel.astype(layer.param_dtype), layer.u1[...], layer.u2[...])
    layer.s1[...], layer.s2[...] = sk.s1, sk.s2
    layer._set_bias(bias)
    return layer
