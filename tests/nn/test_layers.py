"""Layers: forward vs dense reconstruction, from_dense, counts, init variance, factory, errors."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import (
  Dense,
  DenseSpec,
  LowRankDense,
  LowRankSpec,
  TTDense,
  TTSpec,
  format_table,
  make_dense,
)
from tnjax.nn.init import target_variance
from tnjax.tensor import TTMatrix, max_tt_ranks, tt_num_params, tt_to_dense

TT_MNIST = TTSpec(ranks=8, in_shape=(4, 8, 8, 4), out_shape=(4, 8, 8, 4))


def build(cls, spec, n_in, n_out, seed=0):
  layer = cls(n_in, n_out, spec, rngs=nnx.Rngs(seed), param_dtype=jnp.float64)
  if layer.bias is not None:  # a non-zero bias so the test sees it
    layer.bias[...] = jnp.linspace(-1, 1, n_out)
  return layer


def abstract(cls, *args):
  """The layer with abstract parameters: exact sizes without drawing random numbers."""
  return nnx.eval_shape(lambda: cls(*args, rngs=nnx.Rngs(0)))


@pytest.mark.parametrize(
  "cls, spec, n_in, n_out",
  [
    (TTDense, TT_MNIST, 1024, 1024),
    (TTDense, TTSpec(ranks=(2, 3), in_shape=(2, 3, 4), out_shape=(5, 1, 2)), 24, 10),
    (TTDense, TTSpec(ranks=2, order=2), 1021, 10),  # automatic shapes with padding
    (LowRankDense, LowRankSpec(rank=5), 60, 40),
    (Dense, DenseSpec(), 60, 40),
  ],
)
def test_forward_equals_dense_reconstruction(x64, cls, spec, n_in, n_out):
  layer = build(cls, spec, n_in, n_out)
  W = layer.to_dense()
  assert W.shape == (n_in, n_out)
  for batch_shape in [(3,), (2, 4)]:
    x = jnp.asarray(np.random.default_rng(0).normal(size=batch_shape + (n_in,)))
    y = layer(x)
    assert y.shape == batch_shape + (n_out,)
    np.testing.assert_allclose(y, x @ W + layer.bias[...], rtol=1e-10, atol=1e-12)


def test_tt_from_dense_round_trip(x64):
  layer = build(TTDense, TT_MNIST, 1024, 1024)
  copy = TTDense.from_dense(layer.to_dense(), layer.bias[...], TT_MNIST, param_dtype=jnp.float64)
  assert copy.ranks == (1, 8, 8, 8, 1)
  np.testing.assert_allclose(copy.to_dense(), layer.to_dense(), atol=1e-10)
  np.testing.assert_allclose(copy.bias[...], layer.bias[...])


def test_tt_from_dense_lowers_ranks_when_eps_allows(x64):
  spec = TTSpec(ranks=(2, 3), in_shape=(2, 3, 4), out_shape=(5, 1, 2))
  rng = np.random.default_rng(2)
  rank_one = [jnp.asarray(rng.normal(size=(1, m, n, 1))) for m, n in zip((2, 3, 4), (5, 1, 2))]
  W = tt_to_dense(TTMatrix(tuple(rank_one)))
  copy = TTDense.from_dense(W, None, spec, eps=1e-9, param_dtype=jnp.float64)
  assert copy.ranks == (1, 1, 1, 1) and copy.spec.ranks == (1, 1)
  np.testing.assert_allclose(copy.to_dense(), W, atol=1e-10)


def test_tt_layer_pads_automatic_shapes_and_slices_back(x64):
  layer = build(TTDense, TTSpec(ranks=2, order=2), 1021, 10)
  assert layer.in_shape == (31, 33) and layer.out_shape == (2, 5)  # 1021 padded to 1023
  assert layer.to_dense().shape == (1021, 10)
  # At the largest useful rank TT-SVD is exact, padding included.
  W = np.random.default_rng(3).normal(size=(1021, 10))
  spec = TTSpec(ranks=max_tt_ranks(layer.in_shape, layer.out_shape), order=2)
  copy = TTDense.from_dense(W, None, spec, param_dtype=jnp.float64)
  np.testing.assert_allclose(copy.to_dense(), W, atol=1e-10)


def test_tt_layer_clips_a_rank_above_the_useful_maximum():
  with pytest.warns(UserWarning, match=r"clipped to \(4, 4\)"):
    layer = abstract(TTDense, 8, 8, TTSpec(ranks=10, in_shape=(2, 2, 2), out_shape=(2, 2, 2)))
  assert [c.shape for c in layer.cores] == [(1, 2, 2, 4), (4, 2, 2, 4), (4, 2, 2, 1)]
  assert layer.ranks == (1, 4, 4, 1) and layer.weight_params == 16 + 64 + 16


def test_lowrank_and_dense_from_dense_are_exact(x64):
  rng = np.random.default_rng(1)
  W = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 20))
  layer = LowRankDense.from_dense(W, None, LowRankSpec(rank=3), param_dtype=jnp.float64)
  np.testing.assert_allclose(layer.to_dense(), W, atol=1e-10)
  b = np.arange(20.0)
  dense = Dense.from_dense(W, b, param_dtype=jnp.float64)
  np.testing.assert_array_equal(dense.to_dense(), W)
  np.testing.assert_array_equal(dense.bias[...], b)


def test_parameter_counts_are_exact_and_include_the_bias():
  tt = abstract(TTDense, 1024, 1024, TT_MNIST)
  assert (tt.weight_params, tt.num_params) == (8448, 8448 + 1024)
  assert tt.dense_weight_params == 1024 * 1024
  assert tt.compression == pytest.approx(1024 * 1024 / 8448)
  lowrank = abstract(LowRankDense, 1024, 1024, LowRankSpec(rank=4, use_bias=False))
  assert (lowrank.weight_params, lowrank.num_params) == (2048 * 4, 2048 * 4)
  lowrank = abstract(LowRankDense, 300, 100, LowRankSpec(rank=5))
  assert lowrank.num_params == 5 * 400 + 100
  dense = abstract(Dense, 300, 100, DenseSpec())
  assert (dense.num_params, dense.compression) == (300 * 100 + 100, 1.0)
  for layer in (tt, lowrank, dense):
    assert layer.num_params == sum(x.size for x in jax.tree.leaves(nnx.state(layer, nnx.Param)))


@pytest.mark.parametrize("rank, compression", [(4, 50_972), (2, 194_622), (1, 713_614)])
def test_vgg_fc6_tt_layer_compression_matches_novikov(rank, compression):
  in_shape, out_shape = (2, 7, 8, 8, 7, 4), (4,) * 6
  spec = TTSpec(ranks=rank, in_shape=in_shape, out_shape=out_shape)
  fc6 = abstract(TTDense, 25088, 4096, spec)
  assert fc6.weight_params == tt_num_params(in_shape, out_shape, rank)
  assert math.floor(fc6.compression) == compression
  assert fc6.num_params == fc6.weight_params + 4096


@pytest.mark.parametrize("init", ["glorot_normal", "he_normal"])
@pytest.mark.parametrize(
  "cls, spec, seeds, rel",
  [
    # Measured over 40 seeds, var(W) / target has std 0.20 per draw for TT
    # (products of 4 normals are heavy-tailed), 0.022 for low rank, ~0.002
    # for dense; each tolerance is at least 3 standard errors of the mean.
    (TTDense, TT_MNIST, 16, 0.15),
    (LowRankDense, LowRankSpec(rank=8), 4, 0.04),
    (Dense, DenseSpec(), 2, 0.01),
  ],
)
def test_reconstructed_weight_has_the_dense_init_variance(cls, spec, seeds, rel, init):
  spec = dataclasses.replace(spec, init=init)
  variances = [
    float(jnp.var(cls(1024, 1024, spec, rngs=nnx.Rngs(seed)).to_dense())) for seed in range(seeds)
  ]
  target = target_variance(init, 1024, 1024)
  assert target == pytest.approx({"glorot_normal": 1 / 1024, "he_normal": 2 / 1024}[init])
  assert np.mean(variances) == pytest.approx(target, rel=rel)


def test_gradient_through_tt_layer_matches_finite_differences(x64):
  layer = build(TTDense, TTSpec(ranks=2, in_shape=(2, 3), out_shape=(3, 2)), 6, 6)
  x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 6)))
  loss = nnx.jit(lambda module: jnp.sum(jnp.sin(module(x))))
  grads = nnx.grad(loss)(layer)
  step = 1e-6
  for param, grad, index in [
    (layer.cores[0], grads["cores"][0], (0, 1, 2, 1)),
    (layer.cores[1], grads["cores"][1], (1, 0, 1, 0)),
    (layer.bias, grads["bias"], (3,)),
  ]:
    original = param[...]
    values = []
    for sign in (1, -1):
      param[...] = original.at[index].add(sign * step)
      values.append(float(loss(layer)))
    param[...] = original
    numeric = (values[0] - values[1]) / (2 * step)
    assert abs(numeric) > 1e-3  # a real slope, not 0 == 0
    assert float(grad[...][index]) == pytest.approx(numeric, rel=1e-6)


def test_make_dense_builds_from_config_dicts():
  make = lambda spec, n_in, n_out: nnx.eval_shape(
    lambda: make_dense(spec, n_in, n_out, rngs=nnx.Rngs(0))
  )
  layer = make({"kind": "tt", "ranks": 4, "in_shape": [4, 8], "out_shape": [2, 5]}, 32, 10)
  assert isinstance(layer, TTDense) and layer.spec.in_shape == (4, 8) and layer.ranks == (1, 4, 1)
  assert isinstance(make({"kind": "lowrank", "rank": 2}, 8, 8), LowRankDense)
  assert isinstance(make({"kind": "dense"}, 8, 8), Dense)
  # A spec object works as well as its config.
  layer = make(LowRankSpec(rank=3, use_bias=False), 8, 6)
  assert isinstance(layer, LowRankDense) and layer.rank == 3 and layer.bias is None


def test_jitted_tt_layer_matches_the_eager_call(x64):
  layer = build(TTDense, TTSpec(ranks=(2, 3), in_shape=(2, 3, 4), out_shape=(5, 1, 2)), 24, 10)
  x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 3, 24)))
  jitted = nnx.jit(lambda module, inputs: module(inputs))(layer, x)
  np.testing.assert_allclose(jitted, layer(x), rtol=1e-12, atol=1e-12)


def test_layer_table_lists_kinds_and_compression():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.first = TTDense(1024, 1024, TT_MNIST, rngs=rngs)
      self.second = Dense(1024, 10, rngs=rngs)

  table = format_table(abstract(Net))
  assert "4x8x8x4 -> 4x8x8x4 ranks 8-8-8" in table and "124.1" in table
  assert "19,722" in table  # 8,448 + 1,024 + 10,250


class ConvOnlySpec(DenseSpec):
  kind = "conv_only"  # a kind with no dense layer in the registry


@pytest.mark.parametrize(
  "make, message",
  [
    (
      lambda: TTDense(1000, 1024, TT_MNIST, rngs=nnx.Rngs(0)),
      r"TTSpec.in_shape=\(4, 8, 8, 4\) multiplies to 1024, but the layer has 1000 in features",
    ),
    (
      lambda: TTDense(1024, 1000, TT_MNIST, rngs=nnx.Rngs(0)),
      r"TTSpec.out_shape=\(4, 8, 8, 4\) multiplies to 1024, but the layer has 1000 out features",
    ),
    (lambda: TTDense(0, 4, TTSpec(), rngs=nnx.Rngs(0)), "TTDense: in_features must be >= 1"),
    (lambda: LowRankDense(4, 0, LowRankSpec(), rngs=nnx.Rngs(0)), "out_features must be >= 1"),
    (
      lambda: abstract(TTDense, 16, 16, TTSpec(ranks=2, order=2))(jnp.ones((2, 15))),
      "TTDense expects 16 input features",
    ),
    (lambda: make_dense(ConvOnlySpec(), 8, 8, rngs=nnx.Rngs(0)), "kind 'conv_only' has no dense"),
    (lambda: TTDense.from_dense(np.ones(16), None, TTSpec(order=2)), "2-D"),
    (
      lambda: LowRankDense.from_dense(np.ones((4, 3)), None, LowRankSpec(rank=5)),
      r"rank 5 must be between 1 and min\(4, 3\)",
    ),
    (
      lambda: Dense.from_dense(np.ones((4, 3)), np.ones(4)),
      r"bias has shape \(4,\), expected \(3,\)",
    ),
    (
      lambda: Dense.from_dense(np.ones((4, 3)), np.ones(3), DenseSpec(use_bias=False)),
      "spec has use_bias=False",
    ),
  ],
)
def test_bad_layers_and_inputs_raise_clear_errors(make, message):
  with pytest.raises(ValueError, match=message):
    make()
