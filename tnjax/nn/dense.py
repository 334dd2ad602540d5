"""The dense baseline, behind the same contract as the factorised layers."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.base import FactorizedDense, check_dense_weight
from tnjax.nn.spec import DenseSpec


class Dense(FactorizedDense):
  """y = x @ W + b with a full W; initialised by `spec.init`."""

  spec_type = DenseSpec

  def __init__(self, in_features: int, out_features: int, spec: DenseSpec = DenseSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_features, out_features, spec, rngs=rngs, **kwargs)
    std = init_lib.target_variance(spec.init, self.in_features, self.out_features) ** 0.5
    self.kernel = nnx.Param(init_lib.normal(rngs.params(), (self.in_features, self.out_features),
                                            std, self.param_dtype))

  @property
  def weight_params(self) -> int:
    return self.in_features * self.out_features

  def _matmul(self, x):
    return jnp.matmul(x, self.kernel[...].astype(x.dtype), precision=self.precision)

  def to_dense(self):
    return self.kernel[...]

  @classmethod
  def from_dense(cls, W, b=None, spec: DenseSpec = DenseSpec(), **kwargs):
    W, n_in, n_out = check_dense_weight(W)
    layer = cls(n_in, n_out, spec, rngs=nnx.Rngs(0), **kwargs)
    layer.kernel[...] = W.astype(layer.param_dtype)
    layer._set_bias(b)
    return layer
