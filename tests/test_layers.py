"""Layers: forward vs dense reconstruction, from_dense, counts, init variance, specs, errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import (Dense, DenseSpec, LowRankDense, LowRankSpec, TTDense, TTSpec, format_table,
                      make_dense, spec_from_config)
from tnjax.nn.init import target_variance
from tnjax.tensor import tt_to_dense

TT_MNIST = TTSpec(ranks=8, in_shape=(4, 8, 8, 4), out_shape=(4, 8, 8, 4))


def build(cls, spec, n_in, n_out, seed=0):
  layer = cls(n_in, n_out, spec, rngs=nnx.Rngs(seed), param_dtype=jnp.float64)
  if layer.bias is not None:  # a non-zero bias so the test sees it
    layer.bias[...] = jnp.linspace(-1, 1, n_out)
  return layer


@pytest.mark.parametrize("cls, spec, n_in, n_out", [
    (TTDense, TT_MNIST, 1024, 1024),
    (TTDense, TTSpec(ranks=(2, 3), in_shape=(2, 3, 4), out_shape=(5, 1, 2)), 24, 10),
    (TTDense, TTSpec(ranks=3, order=3), 1021, 10),  # automatic shapes with padding
    (LowRankDense, LowRankSpec(rank=5), 60, 40),
    (Dense, DenseSpec(), 60, 40),
])
@pytest.mark.parametrize("batch_shape", [(3,), (2, 4)])
def test_forward_equals_dense_reconstruction(x64, cls, spec, n_in, n_out, batch_shape):
  layer = build(cls, spec, n_in, n_out)
  x = jnp.asarray(np.random.default_rng(0).normal(size=batch_shape + (n_in,)))
  W = layer.to_dense()
  assert W.shape == (n_in, n_out)
  np.testing.assert_allclose(layer(x), x @ W + layer.bias[...], rtol=1e-10, atol=1e-12)


def test_tt_from_dense_round_trip(x64):
  layer = build(TTDense, TT_MNIST, 1024, 1024)
  copy = TTDense.from_dense(layer.to_dense(), layer.bias[...], TT_MNIST, param_dtype=jnp.float64)
  assert copy.ranks == (1, 8, 8, 8, 1)
  np.testing.assert_allclose(copy.to_dense(), layer.to_dense(), atol=1e-10)
  np.testing.assert_allclose(copy.bias[...], layer.bias[...])


def test_tt_from_dense_lowers_ranks_when_eps_allows(x64):
  layer = build(TTDense, TTSpec(ranks=2, in_shape=(4, 4, 4), out_shape=(4, 4, 4)), 64, 64)
  copy = TTDense.from_dense(layer.to_dense(), None, TTSpec(ranks=16, in_shape=(4, 4, 4),
                            out_shape=(4, 4, 4)), eps=1e-9, param_dtype=jnp.float64)
  assert copy.ranks == (1, 2, 2, 1) and copy.spec.ranks == (2, 2)
  np.testing.assert_allclose(copy.to_dense(), layer.to_dense(), atol=1e-9)


def test_lowrank_from_dense_is_exact_for_a_rank_r_matrix(x64):
  rng = np.random.default_rng(1)
  W = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 20))
  layer = LowRankDense.from_dense(W, None, LowRankSpec(rank=3), param_dtype=jnp.float64)
  np.testing.assert_allclose(layer.to_dense(), W, atol=1e-10)


def test_parameter_counts_are_exact():
  rngs = nnx.Rngs(0)
  tt = TTDense(1024, 1024, TT_MNIST, rngs=rngs)
  assert (tt.weight_params, tt.num_params) == (8448, 8448 + 1024)
  assert tt.compression == pytest.approx(1024 * 1024 / 8448)
  lowrank = LowRankDense(1024, 1024, LowRankSpec(rank=4, use_bias=False), rngs=rngs)
  assert lowrank.num_params == 2048 * 4
  fc6 = TTDense(25088, 4096, TTSpec(ranks=4, in_shape=(2, 7, 8, 8, 7, 4), out_shape=(4,) * 6),
                rngs=rngs)
  assert fc6.weight_params == 2016 and int(fc6.compression) == 50_972


@pytest.mark.parametrize("init", ["glorot_normal", "he_normal"])
@pytest.mark.parametrize("cls, spec", [(TTDense, TT_MNIST), (LowRankDense, LowRankSpec(rank=8)),
                                       (Dense, DenseSpec())])
def test_reconstructed_weight_has_the_dense_init_variance(cls, spec, init):
  spec = dataclasses.replace(spec, init=init)
  variances = [float(jnp.var(cls(1024, 1024, spec, rngs=nnx.Rngs(seed)).to_dense()))
               for seed in range(6)]
  target = target_variance(init, 1024, 1024)
  # Each W is one draw of ~1M correlated entries; averaged over seeds the
  # spread is a few percent for TT (products of 4 normals are heavy-tailed).
  assert np.mean(variances) == pytest.approx(target, rel=0.15)


def test_gradient_through_tt_layer_matches_finite_differences(x64):
  layer = build(TTDense, TTSpec(ranks=2, in_shape=(2, 3), out_shape=(3, 2)), 6, 6)
  x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 6)))
  graphdef, params = nnx.split(layer)
  loss = lambda p: jnp.sum(jnp.sin(nnx.merge(graphdef, p)(x)))
  grads = jax.grad(loss)(params)
  core = params["cores"][0][...]
  eps = 1e-6
  for index in [(0, 0, 0, 0), (0, 1, 2, 1)]:
    bumped = [jax.tree.map(lambda v: v, params) for _ in range(2)]
    for sign, p in zip((1, -1), bumped):
      p["cores"][0][...] = core.at[index].add(sign * eps)
    numeric = (loss(bumped[0]) - loss(bumped[1])) / (2 * eps)
    assert float(grads["cores"][0][...][index]) == pytest.approx(float(numeric), rel=1e-6, abs=1e-9)


def test_make_dense_builds_from_config_dicts():
  rngs = nnx.Rngs(0)
  layer = make_dense({"kind": "tt", "ranks": 4, "in_shape": [4, 8], "out_shape": [2, 5]}, 32, 10,
                     rngs=rngs)
  assert isinstance(layer, TTDense) and layer.spec.in_shape == (4, 8)
  assert isinstance(make_dense({"kind": "lowrank", "rank": 2}, 8, 8, rngs=rngs), LowRankDense)
  assert isinstance(make_dense({"kind": "dense"}, 8, 8, rngs=rngs), Dense)
  for spec in (TT_MNIST, LowRankSpec(rank=3), DenseSpec(use_bias=False)):
    assert spec_from_config(spec.to_config()) == spec


def test_layer_table_lists_kinds_and_compression():
  class Net(nnx.Module):
    def __init__(self):
      self.first = TTDense(1024, 1024, TT_MNIST, rngs=nnx.Rngs(0))
      self.second = Dense(1024, 10, rngs=nnx.Rngs(0))
  table = format_table(Net())
  assert "4x8x8x4 -> 4x8x8x4 ranks 8-8-8" in table and "124.1" in table
  assert "19,722" in table  # 8,448 + 1,024 + 10,250


@pytest.mark.parametrize("make, message", [
    (lambda: TTSpec(ranks=0), "ranks must be >= 1"),
    (lambda: TTSpec(in_shape=(4, 4), out_shape=(4, 4, 4)), "different lengths"),
    (lambda: TTSpec(in_shape=(4, 4)), "give both in_shape and out_shape"),
    (lambda: LowRankSpec(rank=0), "rank must be >= 1"),
    (lambda: DenseSpec(init="xavier"), "init='xavier' is unknown"),
    (lambda: spec_from_config({"kind": "tucker9"}), "Unknown layer kind 'tucker9'"),
    (lambda: spec_from_config({"kind": "tt", "rank": 4}), "has no field\\(s\\) \\['rank'\\]"),
    (lambda: TTDense(1000, 1024, TT_MNIST, rngs=nnx.Rngs(0)), "multiplies to 1024, but the layer has 1000"),
    (lambda: TTDense(0, 4, TTSpec(), rngs=nnx.Rngs(0)), "in_features must be >= 1"),
    (lambda: TTDense(16, 16, TTSpec(ranks=2, order=2), rngs=nnx.Rngs(0))(jnp.ones((2, 15))),
     "expects 16 input features"),
])
def test_bad_specs_and_inputs_raise_clear_errors(make, message):
  with pytest.raises(ValueError, match=message):
    make()
