"""CPDense: a dense layer whose tensorised weight is kept in CP form."""

from __future__ import annotations

import dataclasses
import math

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.dense_base import FactorizedDense, pad_features
from tnjax.tensor import cp, shapes
from tnjax.nn.spec import LayerSpec, check_mode_shapes


@dataclasses.dataclass(frozen=True)
class CPSpec(LayerSpec):
  """CP decomposition: a sum of `rank` rank-1 terms.

  For a conv (CPAC-Conv, Wang, Guo & Yue 2021) the kernel's four modes are
  factorised and the shape fields are ignored. For a dense layer the weight is
  tensorised like a TT-matrix, with one factor per (in mode, out mode) pair.

  Attributes:
    rank: number of rank-1 terms R.
    in_shape, out_shape: dense only: input / output modes; None factorises the
      feature counts automatically into `order` balanced modes.
    order: dense only: number of factors when shapes are automatic.
    factor_init: 'variance' (the factors' product has the dense init's variance)
      or, for a conv, 'cp_als': the factors of a CP-ALS (100 sweeps) of a random
      kernel randn / (kh kw), as the CPAC-Conv authors' code initialises them.
  """

  rank: int = 4
  in_shape: tuple[int, ...] | None = None
  out_shape: tuple[int, ...] | None = None
  order: int = 4
  factor_init: str = "variance"
  int_fields = ("rank", "order")  # whole numbers (checked in LayerSpec)
  kind = "cp"
  size_fields = ("rank",)

  def largest_useful_size(self, layer) -> int:
    """The rank at which CP stores the dense count (`layer` is sized at rank 1; a dense
    layer's CP factors the tensorised weight, so a rank costs less than in+out)."""
    return max(1, math.prod(layer.weight_shape) // max(1, layer.weight_params // layer.spec.rank))

  def __post_init__(self):
    super().__post_init__()
    if self.rank < 1:
      raise ValueError(f"CPSpec.rank must be >= 1, got {self.rank}.")
    if self.factor_init not in ("variance", "cp_als"):
      raise ValueError(
        f"CPSpec.factor_init={self.factor_init!r} is unknown; choose 'variance' or 'cp_als'."
      )
    check_mode_shapes(self)


class CPDense(FactorizedDense):
  """y = x @ W + b with W (prod m_k, prod n_k) a rank-R CP tensor of pair modes.

  Factor k has shape (m_k, n_k, R): W[(i_1..i_d), (j_1..j_d)] =
  sum_r prod_k F_k[i_k, j_k, r]. Modes come from `spec.in_shape` /
  `spec.out_shape` or, unset, from balanced automatic factorisation (padding
  the features up where they factor badly, as TTDense does). Factors are iid
  normal with one std chosen so W has the variance of `spec.init`.
  `from_dense` is CP-ALS (fit option `n_iter`).

  Args: as FactorizedDense (in_features, out_features, spec: CPSpec, dtype,
  param_dtype, precision, rngs).
  """

  spec_type = CPSpec
  fit_options = ("n_iter",)

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    self.in_shape, self.out_shape = shapes.resolve_tt_shapes(
      self.in_features, self.out_features, spec.in_shape, spec.out_shape, spec.order, owner="CPSpec"
    )
    if len(self.in_shape) < 2:
      # One factor (m, n, R) only sums R copies of W: more numbers than W, nothing gained.
      raise ValueError(
        f"CPDense needs at least 2 modes (CPSpec.order or the shapes' length), "
        f"got in_shape={self.in_shape}."
      )
    variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
    std = init_lib.product_stds(variance, num_factors=len(self.in_shape), summed_terms=spec.rank)
    self.factors = nnx.List(
      [
        nnx.Param(init_lib.normal(rngs.params(), (m, n, spec.rank), std, self.param_dtype))
        for m, n in zip(self.in_shape, self.out_shape)
      ]
    )

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

  def weights(self) -> cp.CPMatrix:
    return cp.CPMatrix(tuple(f[...] for f in self.factors))

  def to_dense(self):
    return cp.cp_matrix_to_dense(self.weights())[: self.in_features, : self.out_features]

  def _matmul(self, x):
    x = pad_features(x, math.prod(self.in_shape))
    y = cp.cp_matrix_matmul(
      x, self.weights().astype(x.dtype), precision=self.precision, method=self.spec.method
    )
    return y[..., : self.out_features]

  def significance(self):
    """Per rank component, the magnitude (Frobenius norm) of its rank-1 term."""
    return cp.cp_component_significance(self.weights())

  def _fit(self, weight, n_iter: int = 500):
    w = cp.cp_matrix_from_dense(weight, self.in_shape, self.out_shape, self.rank, n_iter=n_iter)
    for param, value in zip(self.factors, w.factors):
      param[...] = value.astype(self.param_dtype)
