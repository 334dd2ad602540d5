"""LowRankDense: the matrix-rank baseline W = U V."""

from __future__ import annotations

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.base import FactorizedDense, check_dense_weight
from tnjax.nn.spec import LowRankSpec
from tnjax.tensor import lowrank


class LowRankDense(FactorizedDense):
  """y = (x @ U) @ V + b, U: (in, rank), V: (rank, out).

  U and V get equal standard deviations chosen so U @ V has the variance of
  `spec.init` for a dense (in, out) weight.
  """

  spec_type = LowRankSpec

  def __init__(self, in_features: int, out_features: int, spec: LowRankSpec = LowRankSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_features, out_features, spec, rngs=rngs, **kwargs)
    rank = spec.rank
    variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
    std = init_lib.product_stds(variance, num_factors=2, summed_terms=rank)
    self.u = nnx.Param(init_lib.normal(rngs.params(), (self.in_features, rank), std, self.param_dtype))
    self.v = nnx.Param(init_lib.normal(rngs.params(), (rank, self.out_features), std, self.param_dtype))

  @property
  def rank(self) -> int:
    return self.u.shape[1]

  @property
  def weight_params(self) -> int:
    return lowrank.lowrank_num_params(self.in_features, self.out_features, self.rank)

  @property
  def shape_description(self) -> str:
    return f"{self.in_features}x{self.out_features} rank {self.rank}"

  def _matmul(self, x):
    return lowrank.lowrank_matmul(x, self.u[...].astype(x.dtype), self.v[...].astype(x.dtype),
                                  precision=self.precision)

  def to_dense(self):
    return self.u[...] @ self.v[...]

  @classmethod
  def from_dense(cls, W, b=None, spec: LowRankSpec = LowRankSpec(), **kwargs):
    """Truncated SVD of a trained weight."""
    W, n_in, n_out = check_dense_weight(W)
    layer = cls(n_in, n_out, spec, rngs=nnx.Rngs(0), **kwargs)
    u, v = lowrank.lowrank_svd(W, spec.rank)
    if u.shape[1] != spec.rank:
      raise ValueError(f"rank {spec.rank} exceeds min{W.shape}; use rank <= {min(W.shape)}.")
    layer.u[...], layer.v[...] = u.astype(layer.param_dtype), v.astype(layer.param_dtype)
    layer._set_bias(b)
    return layer
