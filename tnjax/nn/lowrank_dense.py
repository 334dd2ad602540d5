"""LowRankDense: the matrix-rank baseline W = U V."""

from __future__ import annotations

import dataclasses
import warnings

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.dense_base import FactorizedDense
from tnjax.tensor import lowrank
from tnjax.nn.spec import LayerSpec


@dataclasses.dataclass(frozen=True)
class LowRankSpec(LayerSpec):
  """Matrix-rank baseline W = U V (Novikov et al.'s 'MR')."""

  rank: int = 8
  int_fields = ("rank",)  # whole numbers (checked in LayerSpec)
  kind = "lowrank"
  size_fields = ("rank",)

  def largest_useful_size(self, layer) -> int:
    return min(layer.weight_shape[0], layer.weight_shape[1])

  def vbmf_sizes(self, weight) -> dict:
    from tnjax.tensor.vbmf import vbmf_rank  # pylint: disable=g-import-not-at-top

    return {"rank": vbmf_rank(weight)}

  def fit_errors(self, weight) -> dict:
    # from_dense is the truncated SVD: the error at rank k is the singular values' tail
    # (Eckart-Young), so one SVD sizes every rank.
    return lowrank.truncation_errors(weight)

  def __post_init__(self):
    super().__post_init__()
    if self.rank < 1:
      raise ValueError(f"LowRankSpec.rank must be >= 1, got {self.rank}.")


class LowRankDense(FactorizedDense):
  """y = (x @ U) @ V + b, U: (in, rank), V: (rank, out).

  U and V get equal standard deviations chosen so U @ V has the variance of
  `spec.init` for a dense (in, out) weight. `from_dense` is the truncated SVD.

  Args: as FactorizedDense (in_features, out_features, spec: LowRankSpec,
  dtype, param_dtype, precision, rngs).
  """

  spec_type = LowRankSpec

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    rank = spec.rank
    if rank > min(self.in_features, self.out_features):
      warnings.warn(
        f"LowRankSpec.rank={rank} exceeds min({self.in_features}, {self.out_features}): "
        f"rank {min(self.in_features, self.out_features)} already represents every "
        "matrix, so the extra factor columns only add weights.",
        stacklevel=2,
      )
    variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
    std = init_lib.product_stds(variance, num_factors=2, summed_terms=rank)
    normal = lambda shape: nnx.Param(init_lib.normal(rngs.params(), shape, std, self.param_dtype))
    self.u = normal((self.in_features, rank))
    self.v = normal((rank, self.out_features))

  @property
  def rank(self) -> int:
    return self.u.shape[1]

  @property
  def weight_params(self) -> int:
    return lowrank.lowrank_num_params(self.in_features, self.out_features, self.rank)

  @property
  def shape_description(self) -> str:
    return f"{self.in_features}x{self.out_features} rank {self.rank}"

  def weights(self) -> lowrank.LowRankMatrix:
    return lowrank.LowRankMatrix(self.u[...], self.v[...])

  def to_dense(self):
    return lowrank.lowrank_to_dense(self.weights())

  def _matmul(self, x):
    return lowrank.lowrank_matmul(
      x, self.weights().astype(x.dtype), precision=self.precision, method=self.spec.method
    )

  def _fit(self, weight):
    w = lowrank.lowrank_from_dense(weight, self.rank)
    self.u[...], self.v[...] = w.u.astype(self.param_dtype), w.v.astype(self.param_dtype)
