"""TTEmbed: TT-embeddings (Hrinchuk et al. 2020), an embedding table as a TT-matrix."""

from __future__ import annotations

import dataclasses
import math

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.embed_base import FactorizedEmbed
from tnjax.nn.spec import LayerSpec
from tnjax.tensor import shapes, tt
from tnjax.tensor.tt_embedding import tt_embedding_lookup


@dataclasses.dataclass(frozen=True)
class TTEmbeddingSpec(LayerSpec):
  """A (V, F) embedding table as a TT-matrix over vocabulary and feature modes.

  Attributes:
    ranks: one TT-rank for every bond, or d-1 per-bond ranks.
    vocab_shape, feature_shape: the modes; None factorises V (padded up, at most 10%)
      and F into `order` balanced modes.
    order: number of cores when the modes are automatic (Hrinchuk et al. use 3 or 4).
  """

  ranks: int | tuple[int, ...] = 8
  vocab_shape: tuple[int, ...] | None = None
  feature_shape: tuple[int, ...] | None = None
  order: int = 3
  use_bias: bool = False
  int_fields = ("ranks", "order")
  kind = "tt_embedding"
  paths = ("factored",)
  size_fields = ("ranks",)

  def __post_init__(self):
    super().__post_init__()
    ranks = (self.ranks,) if isinstance(self.ranks, int) else tuple(self.ranks)
    if any(int(r) < 1 for r in ranks):
      raise ValueError(f"TTEmbeddingSpec.ranks must be >= 1, got {self.ranks}.")
    if self.order < 1:
      raise ValueError(f"TTEmbeddingSpec.order must be >= 1, got {self.order}.")

  def largest_useful_size(self, layer) -> int:
    return max(tt.max_tt_ranks(layer.vocab_shape, layer.feature_shape) or (1,))


class TTEmbed(FactorizedEmbed):
  """Rows of a TT-matrix table, looked up core by core (the table is never formed).

  Cores are drawn so each table entry has nnx.Embed's default variance 1 / F.
  `from_dense` is TT-SVD of the table (fit option `eps`: a relative error bound).
  """

  spec_type = TTEmbeddingSpec
  fit_options = ("eps",)

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    self.vocab_shape = spec.vocab_shape or shapes.factorize(self.num_embeddings, spec.order)
    self.feature_shape = spec.feature_shape or shapes.factorize(self.features, spec.order)
    if math.prod(self.vocab_shape) < self.num_embeddings:
      raise ValueError(
        f"TTEmbeddingSpec.vocab_shape={self.vocab_shape} covers {math.prod(self.vocab_shape)} "
        f"rows, fewer than the {self.num_embeddings} embeddings."
      )
    if math.prod(self.feature_shape) < self.features:
      raise ValueError(
        f"TTEmbeddingSpec.feature_shape={self.feature_shape} covers fewer than the "
        f"{self.features} features."
      )
    core_shapes = tt.tt_core_shapes(self.vocab_shape, self.feature_shape, spec.ranks)
    paths = math.prod(s[3] for s in core_shapes[:-1])
    std = init_lib.product_stds(1.0 / self.features, len(core_shapes), paths)
    self.cores = nnx.List(
      [nnx.Param(init_lib.normal(rngs.params(), s, std, self.param_dtype)) for s in core_shapes]
    )

  @property
  def ranks(self) -> tuple[int, ...]:
    return tuple(c.shape[0] for c in self.cores) + (1,)

  @property
  def weight_params(self) -> int:
    return sum(math.prod(c.shape) for c in self.cores)

  @property
  def shape_description(self) -> str:
    modes = "x".join(map(str, self.vocab_shape)) + " -> " + "x".join(map(str, self.feature_shape))
    return f"{self.num_embeddings}x{self.features} as {modes} ranks {'-'.join(map(str, self.ranks[1:-1]))}"

  def weights(self) -> tt.TTMatrix:
    return tt.TTMatrix(tuple(c[...] for c in self.cores))

  def to_dense(self):
    full = tt.tt_to_dense(self.weights(), precision=self.precision)
    return full[: self.num_embeddings, : self.features]

  def _lookup(self, ids):
    rows = tt_embedding_lookup(self.weights(), ids, precision=self.precision)
    return rows[..., : self.features]

  def tt_problem(self, weight):
    """(matrix, in modes, out modes) that TT-SVD factors: the table over its modes."""
    return weight, self.vocab_shape, self.feature_shape

  def _fit(self, weight, eps: float | None = None):
    table = tt.tt_from_dense(*self.tt_problem(weight), max_rank=self.spec.ranks, eps=eps)
    self.cores = nnx.List([nnx.Param(c.astype(self.param_dtype)) for c in table.cores])
    self.spec = dataclasses.replace(self.spec, ranks=table.ranks[1:-1] or self.spec.ranks)
