"""What every factorised embedding table shares: ids in, rows out, and `attend`.

The embed family mirrors nnx.Embed: `layer(ids)` gives the rows of a (num_embeddings,
features) table, `layer.attend(query)` the query's scores against every row (a tied
output layer). A format keeps the table in its own form; `to_dense()` is the table.
Embeddings have no bias (a spec's use_bias is ignored).
"""

from __future__ import annotations

import abc

import jax.numpy as jnp
from flax import nnx

from tnjax.nn.base import CompressedLayer, layer_dtype, place_output
from tnjax.nn.spec import DenseSpec, LayerSpec


class FactorizedEmbed(CompressedLayer):
  """Base of the embedding family: rows of a (num_embeddings, features) table in some format.

  Args:
    num_embeddings: rows of the table (the vocabulary).
    features: width of a row.
    spec: the format and its sizes (a LayerSpec of the class's `spec_type`).
    dtype: dtype of the rows returned; None keeps the parameters'.
    param_dtype: dtype the parameters are stored in.
    precision: lax precision of the contractions.
    rngs: initialisation keys.
  """

  family = "embed"

  def __init__(
    self,
    num_embeddings: int,
    features: int,
    spec: LayerSpec | None = None,
    *,
    dtype=None,
    param_dtype=jnp.float32,
    precision=None,
    rngs: nnx.Rngs,
  ):
    spec = self._check_spec(spec)
    for name, value in (("num_embeddings", num_embeddings), ("features", features)):
      if int(value) < 1:
        raise ValueError(f"{type(self).__name__}: {name} must be >= 1, got {value}.")
    self.num_embeddings, self.features = int(num_embeddings), int(features)
    self.spec = spec
    self.dtype, self.param_dtype = layer_dtype(spec, dtype), param_dtype
    self.precision = precision
    self.bias = None
    self.fit_error = None
    self._init_params(rngs)

  @property
  def dense_weight_params(self) -> int:
    return self.num_embeddings * self.features

  @property
  def weight_shape(self) -> tuple[int, int]:
    return (self.num_embeddings, self.features)

  @property
  def shape_description(self) -> str:
    return f"{self.num_embeddings}x{self.features}"

  @classmethod
  def from_embed(cls, embed: nnx.Embed, spec: LayerSpec | None = None, **fit_options):
    """This format fitted to a user's nnx.Embed table (dtypes kept)."""
    cls.check_source(embed, nnx.Embed, "from_embed")
    return cls.from_dense(
      embed.embedding[...],
      None,
      cls.spec_for_source(spec, False, fit_options, "from_embed"),
      dtype=embed.dtype,
      param_dtype=embed.param_dtype,
      **fit_options,
    )

  def to_embed(self) -> nnx.Embed:
    """The plain nnx.Embed holding this layer's table."""
    embed = nnx.Embed(
      self.num_embeddings,
      self.features,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      rngs=nnx.Rngs(0),
    )
    embed.embedding[...] = self.to_dense().astype(self.param_dtype)
    return embed

  @abc.abstractmethod
  def _lookup(self, ids):
    """The rows of integer `ids` (any shape): (*ids.shape, features)."""

  @classmethod
  def _for_weight(cls, weight, spec, **layer_kwargs):
    if weight.ndim != 2:
      raise ValueError(
        f"{cls.__name__}.from_dense needs a 2-D (num_embeddings, features) table, "
        f"got shape {weight.shape}."
      )
    return cls(weight.shape[0], weight.shape[1], spec, **layer_kwargs)

  def __call__(self, ids, out_sharding=None):
    if not jnp.issubdtype(jnp.asarray(ids).dtype, jnp.integer):
      raise ValueError(f"{type(self).__name__} looks up integer ids, got {jnp.asarray(ids).dtype}.")
    # As nnx.Embed (jnp.take): -V..-1 count from the end; ids outside -V..V-1 give NaN
    # rows, where a factorised lookup would silently wrap into another row.
    ids = jnp.asarray(ids)
    if self.num_embeddings == 1:  # as nnx.Embed: its one row for every id
      ids = jnp.zeros_like(ids)
    ids = jnp.where(ids < 0, ids + self.num_embeddings, ids)
    valid = (ids >= 0) & (ids < self.num_embeddings)
    rows = self._lookup(jnp.where(valid, ids, 0))
    rows = rows.astype(self.dtype) if self.dtype is not None else rows
    rows = jnp.where(valid[..., None], rows, jnp.asarray(jnp.nan, rows.dtype))
    return place_output(rows, out_sharding)

  def attend(self, query, out_sharding=None):
    """query (..., features) against every row: (..., num_embeddings), as nnx.Embed.attend."""
    table = self.to_dense()
    dtype = self.dtype or jnp.result_type(query, table)
    scores = jnp.dot(query.astype(dtype), table.astype(dtype).T, precision=self.precision)
    return place_output(scores, out_sharding)


class Embed(FactorizedEmbed):
  """The plain table (the baseline), initialised as nnx.Embed's default (variance 1 / F)."""

  spec_type = DenseSpec

  def _init_params(self, rngs: nnx.Rngs):
    std = (1.0 / self.features) ** 0.5
    shape = (self.num_embeddings, self.features)
    self.embedding = nnx.Param(
      std * nnx.initializers.normal(1.0)(rngs.params(), shape, self.param_dtype)
    )

  @property
  def weight_params(self) -> int:
    return self.num_embeddings * self.features

  def weights(self):
    return self.embedding[...]

  def to_dense(self):
    return self.embedding[...]

  def _lookup(self, ids):
    return jnp.take(self.embedding[...], ids, axis=0)

  def _fit(self, weight):
    self.embedding[...] = weight.astype(self.param_dtype)
