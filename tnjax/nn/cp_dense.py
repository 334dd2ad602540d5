"""CPDense: a dense layer whose tensorised weight is kept in CP form."""

from __future__ import annotations

import math

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.base import FactorizedDense, pad_features
from tnjax.nn.spec import CPSpec
from tnjax.tensor import cp, shapes


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
