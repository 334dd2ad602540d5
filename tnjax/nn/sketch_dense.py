"""SketchDense: SK-FC (Kasiviswanathan, Narodytska & Jin 2018).

The sign matrices U are drawn once and kept as `SketchMatrix` variables: not
nnx.Param, so gradients and the optimizer skip them, but part of the model state,
so a checkpoint restores them bit for bit. Only the sketches S are trained, and
only they count in `num_params`.
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.dense_base import FactorizedDense
from tnjax.tensor import sketch
from tnjax.nn.spec import LayerSpec


@dataclasses.dataclass(frozen=True)
class SketchSpec(LayerSpec):
  """Tensor sketch (Kasiviswanathan, Narodytska & Jin 2018): SK-FC / SK-CONV.

  Attributes:
    sketch_size: k, rows of each random sign matrix U (k x d).
    num_sketches: l, sketch pairs per mode; W_hat averages the 2l estimates.
    seed: seed of the fixed U matrices (then they do not depend on the model's seed;
      each layer still gets its own); None draws them from the model's rngs.
  """

  sketch_size: int = 8
  num_sketches: int = 1
  seed: int | None = None
  int_fields = ("sketch_size", "num_sketches")  # whole numbers (checked in LayerSpec)
  kind = "sketch"
  size_fields = ("sketch_size",)

  def largest_useful_size(self, layer) -> int:
    return max(layer.weight_shape[-2], layer.weight_shape[-1])

  def __post_init__(self):
    super().__post_init__()
    if self.sketch_size < 1 or self.num_sketches < 1:
      raise ValueError(
        f"SketchSpec.sketch_size and num_sketches must be >= 1, got "
        f"sketch_size={self.sketch_size}, num_sketches={self.num_sketches}."
      )


class SketchMatrix(nnx.Variable):
  """A fixed random sign matrix: saved and restored with the model, never trained."""


def sign_key(spec: SketchSpec, rngs: nnx.Rngs):
  """The key of a layer's sign matrices: the layer's params stream, or with `spec.seed`
  set, that seed folded with the layer's position in the stream. So the matrices do
  not depend on the model's seed, and two layers sharing a spec still get distinct
  ones (the paper draws independent U per layer)."""
  if spec.seed is None:
    return rngs.params()
  position = rngs.params.count[...]  # this layer's place among the model's draws
  rngs.params()  # advance the stream, so the next layer has another position
  return jax.random.fold_in(jax.random.key(spec.seed), position)


def warn_if_larger(layer) -> None:
  if layer.weight_params > layer.dense_weight_params:
    spec = layer.spec
    warnings.warn(
      f"{type(layer).__name__} {layer.shape_description}: l={spec.num_sketches}, "
      f"k={spec.sketch_size} give {layer.weight_params:,} parameters, more than the dense "
      f"layer's {layer.dense_weight_params:,}; lower sketch_size or num_sketches.",
      stacklevel=3,
    )


class SketchDense(FactorizedDense):
  """y = x @ W_hat + b with W_hat = 1/(2l) sum_i (U1_i^T S1_i + S2_i U2_i); W is never formed.

  Trained: S1 (l, k, out), S2 (l, in, k): l k (in + out) numbers. Their entries
  are normal with the std that gives W_hat the variance of `spec.init`.
  `from_dense` sketches a trained W: S1_i = U1_i W, S2_i = W U2_i^T (unbiased).

  Args: as FactorizedDense (in_features, out_features, spec: SketchSpec, dtype,
  param_dtype, precision, rngs).
  """

  spec_type = SketchSpec

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    l, k = spec.num_sketches, spec.sketch_size
    key1, key2 = jax.random.split(sign_key(spec, rngs))
    self.u1 = SketchMatrix(sketch.sign_matrices(key1, l, k, self.in_features, self.param_dtype))
    self.u2 = SketchMatrix(sketch.sign_matrices(key2, l, k, self.out_features, self.param_dtype))
    variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
    std = sketch.sketch_init_std(variance, l)
    normal = lambda shape: nnx.Param(init_lib.normal(rngs.params(), shape, std, self.param_dtype))
    self.s1 = normal((l, k, self.out_features))
    self.s2 = normal((l, self.in_features, k))
    warn_if_larger(self)

  @property
  def weight_params(self) -> int:
    return self.s1.size + self.s2.size

  @property
  def shape_description(self) -> str:
    spec = self.spec
    return (
      f"{self.in_features}x{self.out_features} sketch l={spec.num_sketches} k={spec.sketch_size}"
    )

  def weights(self) -> sketch.DenseSketch:
    return sketch.DenseSketch(self.s1[...], self.s2[...], self.u1[...], self.u2[...])

  def to_dense(self):
    return sketch.dense_sketch_to_dense(self.weights(), precision=self.precision)

  def _matmul(self, x):
    return sketch.dense_sketch_matmul(
      x, self.weights().astype(x.dtype), precision=self.precision, method=self.spec.method
    )

  def _fit(self, weight):
    w = sketch.dense_sketch_from_dense(weight.astype(self.param_dtype), self.u1[...], self.u2[...])
    self.s1[...], self.s2[...] = w.s1, w.s2
