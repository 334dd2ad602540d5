"""TTDense: the TT-layer of Novikov et al. (2015) as a Flax NNX module."""

from __future__ import annotations

import dataclasses
import math

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.dense_base import FactorizedDense, pad_features
from tnjax.tensor import shapes, tt
from tnjax.nn.spec import LayerSpec, check_mode_shapes


@dataclasses.dataclass(frozen=True)
class TTSpec(LayerSpec):
  """Tensor-Train matrix (Novikov et al. 2015).

  Attributes:
    ranks: one TT-rank for every bond, or d-1 per-bond ranks.
    in_shape, out_shape: input / output modes; None factorises the feature
      counts automatically into `order` balanced modes (padding if needed).
    order: number of cores when shapes are automatic.
    clip_ranks: clip ranks above a bond's useful maximum (fewer weights, the same
      matrices). False keeps every bond at the given rank, as Novikov et al.'s
      code and their parameter counts do.
  """

  ranks: int | tuple[int, ...] = 8
  in_shape: tuple[int, ...] | None = None
  out_shape: tuple[int, ...] | None = None
  order: int = 4
  clip_ranks: bool = True
  int_fields = ("ranks", "order")  # whole numbers (checked in LayerSpec)
  kind = "tt"
  size_fields = ("ranks",)

  def largest_useful_size(self, layer) -> int:
    from tnjax.tensor.tt import max_tt_ranks  # pylint: disable=g-import-not-at-top

    # A TTConv's TT-matrix has the kernel's spatial core in front of its channel modes.
    in_shape = getattr(layer, "tt_in_shape", layer.in_shape)
    out_shape = getattr(layer, "tt_out_shape", layer.out_shape)
    return max(max_tt_ranks(in_shape, out_shape) or (1,))

  def stored_sizes(self, layer) -> dict:
    inner = tuple(int(core.shape[0]) for core in layer.cores[1:])  # TTDense and TTConv
    if not self.clip_ranks or not inner:
      return {}
    return {"ranks": inner[0] if len(set(inner)) == 1 else inner}

  def __post_init__(self):
    super().__post_init__()
    ranks = (self.ranks,) if isinstance(self.ranks, int) else tuple(self.ranks)
    if any(int(r) < 1 for r in ranks):
      raise ValueError(f"TTSpec.ranks must be >= 1, got {self.ranks}.")
    check_mode_shapes(self)


class TTDense(FactorizedDense):
  """y = x @ W + b with W a TT-matrix; W is never formed in the forward pass.

  Core k has shape (r_{k-1}, m_k, n_k, r_k). Modes come from `spec.in_shape` /
  `spec.out_shape` or, unset, from balanced factorisation into `spec.order`
  modes (padding a badly factoring size up; inputs are zero-padded and outputs
  cut). Cores are drawn iid normal with a common std chosen so each entry of W
  has the variance of `spec.init` for the dense layer it replaces: W_ij sums
  prod(r_1..r_{d-1}) products of d core entries. `from_dense` is TT-SVD
  (fit option `eps`: a relative error bound that may lower the ranks).

  Args: as FactorizedDense (in_features, out_features, spec: TTSpec, dtype,
  param_dtype, precision, rngs).
  """

  spec_type = TTSpec
  fit_options = ("eps",)

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    self.in_shape, self.out_shape = shapes.resolve_tt_shapes(
      self.in_features, self.out_features, spec.in_shape, spec.out_shape, spec.order, owner="TTSpec"
    )
    core_shapes = tt.tt_core_shapes(self.in_shape, self.out_shape, spec.ranks, clip=spec.clip_ranks)
    variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
    paths = math.prod(s[3] for s in core_shapes[:-1])
    std = init_lib.product_stds(variance, num_factors=len(core_shapes), summed_terms=paths)
    self.cores = nnx.List(
      [nnx.Param(init_lib.normal(rngs.params(), s, std, self.param_dtype)) for s in core_shapes]
    )

  @property
  def ranks(self) -> tuple[int, ...]:
    """Bond ranks (1, r_1, ..., r_{d-1}, 1)."""
    return tuple(c.shape[0] for c in self.cores) + (1,)

  @property
  def weight_params(self) -> int:
    return sum(math.prod(c.shape) for c in self.cores)

  @property
  def shape_description(self) -> str:
    modes = "x".join(map(str, self.in_shape)) + " -> " + "x".join(map(str, self.out_shape))
    return f"{modes} ranks {'-'.join(map(str, self.ranks[1:-1]))}"

  def weights(self) -> tt.TTMatrix:
    return tt.TTMatrix(tuple(c[...] for c in self.cores))

  def to_dense(self):
    full = tt.tt_to_dense(self.weights(), precision=self.precision)
    return full[: self.in_features, : self.out_features]

  def _matmul(self, x):
    x = pad_features(x, math.prod(self.in_shape))
    y = tt.tt_matmul(
      x, self.weights().astype(x.dtype), precision=self.precision, method=self.spec.method
    )
    return y[..., : self.out_features]

  def tt_problem(self, weight):
    """(matrix, in modes, out modes) that TT-SVD factors to fit `weight`."""
    return weight, self.in_shape, self.out_shape

  def _fit(self, weight, eps: float | None = None):
    """TT-SVD with ranks capped by the spec's (and by `eps`); ranks may come out lower."""
    w = tt.tt_from_dense(*self.tt_problem(weight), max_rank=self.spec.ranks, eps=eps)
    self.cores = nnx.List([nnx.Param(c.astype(self.param_dtype)) for c in w.cores])
    self.spec = dataclasses.replace(self.spec, ranks=w.ranks[1:-1] or self.spec.ranks)
