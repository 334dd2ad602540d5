"""CPDense: a dense layer whose tensorised weight is kept in CP form."""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.base import FactorizedDense, check_dense_weight
from tnjax.nn.spec import CPSpec
from tnjax.nn.tt_dense import resolve_tt_shapes
from tnjax.tensor import cp


class CPDense(FactorizedDense):
  """y = x @ W + b with W (prod m_k, prod n_k) a rank-R CP tensor of pair modes.

  Factor k has shape (m_k, n_k, R): W[(i_1..i_d), (j_1..j_d)] =
  sum_r prod_k F_k[i_k, j_k, r]. Modes come from `spec.in_shape` /
  `spec.out_shape` or, unset, from balanced automatic factorisation (padding
  the features up where they factor badly, as TTDense does). Factors are iid
  normal with one std chosen so W has the variance of `spec.init`.
  """

  spec_type = CPSpec

  def __init__(self, in_features: int, out_features: int, spec: CPSpec = CPSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_features, out_features, spec, rngs=rngs, **kwargs)
    self.in_shape, self.out_shape = resolve_tt_shapes(spec, self.in_features, self.out_features)
    if len(self.in_shape) < 2:
      # One factor (m, n, R) only sums R copies of W: more numbers than W, nothing gained.
      raise ValueError(f"CPDense needs at least 2 modes (CPSpec.order or the shapes' length), "
                       f"got in_shape={self.in_shape}.")
    variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
    std = init_lib.product_stds(variance, num_factors=len(self.in_shape), summed_terms=spec.rank)
    self.factors = nnx.List([
        nnx.Param(init_lib.normal(rngs.params(), (m, n, spec.rank), std, self.param_dtype))
        for m, n in zip(self.in_shape, self.out_shape)])
    self.fit_error = None

  def _factors(self, dtype=None):
    return [f[...] if dtype is None else f[...].astype(dtype) for f in self.factors]

  @property
  def rank(self) -> int:
    return self.factors[0].shape[-1]

  @property
  def weight_params(self) -> int:
    return sum(math.prod(f.shape) for f in self.factors)

  @property
  def shape_description(self) -> str:
    modes = "x".join(map(str, self.in_shape)) + " -> " + "x".join(map(str, self.out_shape))
    return f"{modes} CP rank {self.rank}"

  def _matmul(self, x):
    padded_in = math.prod(self.in_shape)
    if padded_in > self.in_features:
      x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, padded_in - self.in_features)])
    y = cp.cp_matmul(x, self._factors(x.dtype), precision=self.precision)
    return y[..., :self.out_features]

  def to_dense(self):
    return cp.cp_matrix_to_dense(self._factors())[:self.in_features, :self.out_features]

  def significance(self):
    """Per rank component, the magnitude (Frobenius norm) of its rank-1 term."""
    return cp.cp_component_significance(self._factors())

  @classmethod
  def from_dense(cls, W, b=None, spec: CPSpec = CPSpec(), *, n_iter: int = 500, **kwargs):
    """CP-ALS of a trained weight; the relative error reached is `fit_error`."""
    W, n_in, n_out = check_dense_weight(W)
    layer = cls(n_in, n_out, spec, rngs=nnx.Rngs(0), **kwargs)
    in_shape, out_shape = layer.in_shape, layer.out_shape
    W = jnp.pad(W, [(0, math.prod(in_shape) - n_in), (0, math.prod(out_shape) - n_out)])
    # (m_1..m_d, n_1..n_d) -> (m_1 n_1, ..., m_d n_d): one ALS mode per factor.
    d = len(in_shape)
    paired = W.reshape(in_shape + out_shape).transpose(
        [axis for k in range(d) for axis in (k, d + k)])
    paired = paired.reshape([m * n for m, n in zip(in_shape, out_shape)])
    factors, layer.fit_error = cp.cp_als(paired, spec.rank, n_iter=n_iter)
    for param, value, m, n in zip(layer.factors, factors, in_shape, out_shape):
      param[...] = value.reshape(m, n, spec.rank).astype(layer.param_dtype)
    layer._set_bias(b)
    return layer
