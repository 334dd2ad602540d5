"""The embedding family's contract, for every registered embedding format (float64): the
rows looked up are the table's, `attend` scores against every row, from_dense is exact at
full rank, counts are exact and gradients match finite differences."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import registry, spec_from_config
from tnjax.tensor import tt
from tnjax.tensor.tt_embedding import tt_embedding_lookup

KINDS = registry.kinds("embed")
FULL_RANK = {  # a 30x12 table exactly (30 = 5x6, 12 = 3x4)
  "dense": {"kind": "dense"},
  "tt_embedding": {
    "kind": "tt_embedding",
    "ranks": 100,
    "vocab_shape": (5, 6),
    "feature_shape": (3, 4),
    "order": 2,
  },
}


def _layer(kind, **spec):
  cls = registry.layer_class("embed", kind)
  return cls(
    30, 12, spec_from_config({"kind": kind, **spec}), param_dtype=jnp.float64, rngs=nnx.Rngs(0)
  )


@pytest.mark.parametrize("kind", KINDS)
def test_rows_and_attend_are_the_tables(kind, x64):
  layer = _layer(kind)
  table = np.asarray(layer.to_dense())
  assert table.shape == (30, 12) and layer.dense_weight_params == 360
  ids = jnp.asarray([[0, 29, 7], [13, 13, 2]])
  np.testing.assert_allclose(layer(ids), table[np.asarray(ids)], rtol=1e-12, atol=1e-14)
  query = jnp.asarray(np.random.default_rng(0).normal(size=(2, 12)))
  np.testing.assert_allclose(layer.attend(query), query @ table.T, rtol=1e-12, atol=1e-12)
  stored = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(layer, nnx.Param)))
  assert layer.weight_params == stored == layer.num_params  # no bias
  with pytest.raises(ValueError, match="looks up integer ids"):
    layer(jnp.zeros((2,)))


@pytest.mark.parametrize("kind", KINDS)
def test_from_dense_is_exact_at_full_rank(kind, x64):
  table = jnp.asarray(np.random.default_rng(1).normal(size=(30, 12)))
  cls = registry.layer_class("embed", kind)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ranks clipped to the bonds' maxima
    layer = cls.from_dense(table, None, spec_from_config(FULL_RANK[kind]), param_dtype=jnp.float64)
  assert layer.fit_error < 1e-10
  np.testing.assert_allclose(layer(jnp.arange(30)), table, atol=1e-10)


def test_a_tt_embedding_stores_the_tt_count_and_pads_a_prime_vocabulary(x64):
  layer = _layer("tt_embedding", ranks=3, order=2)  # 30 -> (5, 6), 12 -> (3, 4)
  assert layer.weight_params == tt.tt_num_params(layer.vocab_shape, layer.feature_shape, 3)
  odd = registry.layer_class("embed", "tt_embedding")(
    31, 12, spec_from_config({"kind": "tt_embedding", "ranks": 2}), rngs=nnx.Rngs(0)
  )
  assert np.prod(odd.vocab_shape) >= 31 and odd(jnp.asarray([30])).shape == (1, 12)


def test_the_lookup_never_forms_the_table_and_equals_its_rows(x64):
  cores = tuple(
    jnp.asarray(np.random.default_rng(k).normal(size=s))
    for k, s in enumerate([(1, 4, 2, 3), (3, 5, 3, 2), (2, 2, 2, 1)])
  )
  table = tt.tt_to_dense(tt.TTMatrix(cores))  # (40, 12)
  ids = jnp.asarray([0, 39, 17, 21])
  np.testing.assert_allclose(tt_embedding_lookup(tt.TTMatrix(cores), ids), table[ids], rtol=1e-12)
  jaxpr = str(jax.make_jaxpr(lambda c: tt_embedding_lookup(tt.TTMatrix(c), ids))(cores))
  assert "40,12" not in jaxpr.replace(" ", "")  # no (40, 12) intermediate


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_equal_finite_differences(kind, x64, finite_differences):
  layer = _layer(kind, **({"ranks": 2, "order": 2} if kind == "tt_embedding" else {}))
  ids = jnp.asarray([1, 28, 5])
  graphdef, params = nnx.split(layer, nnx.Param)
  analytic, numeric = finite_differences(
    lambda p: jnp.sum(jnp.sin(nnx.merge(graphdef, p)(ids))), params
  )
  assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_ids_out_of_range_give_nan_rows_and_negative_ids_count_from_the_end_as_nnx_embed():
  table = nnx.Embed(29, 6, rngs=nnx.Rngs(0))  # 29: automatic TT modes pad it up
  ids = jnp.asarray([0, 28, 29, 30, 100, -1, -29, -30])
  expected = np.asarray(table(ids))
  for kind in registry.kinds("embed"):
    spec = registry.layer_class("embed", kind).spec_type()
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      layer = registry.layer_class("embed", kind).from_embed(table, spec)
    rows = np.asarray(layer(ids))
    np.testing.assert_array_equal(np.isnan(rows), np.isnan(expected), err_msg=kind)
    dense = np.asarray(layer.to_dense())
    np.testing.assert_allclose(rows[[0, 1, 5, 6]], dense[[0, 28, 28, 0]], rtol=1e-5, atol=1e-6)


def test_a_one_row_table_gives_its_row_for_every_id_as_nnx_embed():
  table = nnx.Embed(1, 4, rngs=nnx.Rngs(0))  # e.g. a learned [CLS] token, called with any id
  ids = jnp.asarray([0, 3, -5])
  layer = registry.layer_class("embed", "dense").from_embed(table)
  np.testing.assert_array_equal(layer(ids), table(ids))
  assert not np.isnan(np.asarray(layer(ids))).any()
