"""The dense baseline, behind the same contract as the factorised layers."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.dense_base import FactorizedDense
from tnjax.nn.spec import DenseSpec


class Dense(FactorizedDense):
  """y = x @ W + b with a full W; initialised by `spec.init`.

  Args: as FactorizedDense (in_features, out_features, spec: DenseSpec, dtype,
  param_dtype, precision, rngs).
  """

  spec_type = DenseSpec

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    std = init_lib.target_variance(spec.init, self.in_features, self.out_features) ** 0.5
    self.kernel = nnx.Param(
      init_lib.normal(rngs.params(), (self.in_features, self.out_features), std, self.param_dtype)
    )

  @property
  def weight_params(self) -> int:
    return self.in_features * self.out_features

  def weights(self):
    return self.kernel[...]

  def to_dense(self):
    return self.kernel[...]

  def _matmul(self, x):
    return jnp.matmul(x, self.kernel[...].astype(x.dtype), precision=self.precision)

  def _fit(self, weight):
    self.kernel[...] = weight.astype(self.param_dtype)
