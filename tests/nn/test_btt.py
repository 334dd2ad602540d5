"""Block Tensor-Train layers (Qiu et al. 2024): W from the two cores entry by entry, both
execution paths equal x @ W (float64), from_dense is each block's truncated SVD, exact
weight counts, the paper's muP initialisation and per-core learning rates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import tnjax
from tnjax.nn import BTTDense, BTTSpec
from tnjax.tensor import btt
from tnjax.training import optim


def _random_btt(in_shape, out_shape, rank, seed=0):
  rng = np.random.default_rng(seed)
  (m1, m2), (n1, n2) = in_shape, out_shape
  return btt.BTTMatrix(
    jnp.asarray(rng.normal(size=(m1, m2, rank, n2))),
    jnp.asarray(rng.normal(size=(n2, m1, rank, n1))),
  )


def test_the_matrix_is_the_sum_over_the_rank_of_core_products(x64):
  w = _random_btt((3, 4), (5, 2), 3)
  expected = np.zeros((12, 10))
  for i1, i2, j1, j2 in np.ndindex(3, 4, 5, 2):
    expected[i1 * 4 + i2, j1 * 2 + j2] = float(w.first[i1, i2, :, j2] @ w.second[j2, i1, :, j1])
  np.testing.assert_allclose(btt.btt_to_dense(w), expected, rtol=1e-12, atol=1e-12)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 12)))
  bias = jnp.arange(10.0)
  for method in ("factored", "dense"):
    np.testing.assert_allclose(btt.btt_matmul(x, w, method=method), x @ expected, atol=1e-12)
    np.testing.assert_allclose(  # added block-major on the factored path: the same sum
      btt.btt_matmul(x, w, bias, method=method), x @ expected + bias, atol=1e-12
    )


def test_from_dense_is_the_best_fit_block_by_block(x64):
  rng = np.random.default_rng(2)
  weight = rng.normal(size=(12, 10))
  exact = btt.btt_from_dense(weight, (3, 4), (5, 2), rank=4)  # min(m2, n1) = 4: exact
  np.testing.assert_allclose(btt.btt_to_dense(exact), weight, atol=1e-12)
  fitted = btt.btt_from_dense(weight, (3, 4), (5, 2), rank=2)
  blocks = weight.reshape(3, 4, 5, 2).transpose(0, 3, 1, 2)
  tail = np.linalg.svd(blocks, compute_uv=False)[..., 2:]  # what rank 2 must drop
  error = np.linalg.norm(np.asarray(btt.btt_to_dense(fitted)) - weight)
  np.testing.assert_allclose(error, np.sqrt(np.sum(tail**2)), rtol=1e-10)
  with pytest.raises(ValueError, match=r"between 1 and 4 for modes \(3, 4\) -> \(5, 2\)"):
    btt.btt_from_dense(weight, (3, 4), (5, 2), rank=5)


def test_every_ranks_error_comes_from_one_svd_per_block(x64):
  weight = np.random.default_rng(3).normal(size=(11, 10))  # padded to (3 x 4, 5 x 2)
  errors = btt.btt_truncation_errors(weight, (3, 4), (5, 2))
  assert sorted(errors) == [1, 2, 3, 4]
  for rank in errors:
    rebuilt = np.asarray(btt.btt_to_dense(btt.btt_from_dense(weight, (3, 4), (5, 2), rank)))
    expected = np.linalg.norm(rebuilt[:11] - weight) / np.linalg.norm(weight)
    np.testing.assert_allclose(errors[rank], expected, rtol=1e-9, atol=1e-12)


def test_weight_counts_and_padded_features_are_exact(x64):
  layer = BTTDense(4096, 4096, BTTSpec(rank=4), rngs=nnx.Rngs(0))
  assert (layer.in_shape, layer.out_shape) == ((64, 64), (64, 64))
  assert layer.weight_params == 4 * 64 * 64 * (64 + 64) == 2_097_152  # 8x fewer than dense
  odd = BTTDense(101, 37, BTTSpec(rank=2), rngs=nnx.Rngs(0), param_dtype=jnp.float64)
  (m1, m2), (n1, n2) = odd.in_shape, odd.out_shape
  assert m1 * m2 >= 101 and n1 * n2 >= 37 and odd.weight_params == 2 * m1 * n2 * (m2 + n1)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 101)))
  np.testing.assert_allclose(odd(x), x @ odd.to_dense() + odd.bias[...], atol=1e-12)
  weight = np.random.default_rng(1).normal(size=(101, 37))
  full = BTTDense.from_dense(weight, spec=BTTSpec(rank=min(m2, n1)), param_dtype=jnp.float64)
  assert full.fit_error < 1e-12


def test_mup_initialisation_and_per_core_learning_rates():
  layer = BTTDense(4096, 1024, BTTSpec(rank=2), rngs=nnx.Rngs(0))
  (m1, m2), (n1, n2) = layer.in_shape, layer.out_shape  # (64, 64) -> (32, 32)
  fans = ((m2, 2 * n2), (2 * m1, n1))
  for core, (fan_in, fan_out) in zip((layer.first, layer.second), fans):
    std = fan_in**-0.5 * min(1.0, (fan_out / fan_in) ** 0.5)
    assert abs(float(jnp.std(core[...])) / std - 1) < 0.05
    assert core.get_metadata()["lr_scale"] == 4096 / fan_in / 2
  # The optimizer scales each core's update by its rate; other parameters keep theirs.
  model = nnx.Sequential(BTTDense(64, 32, BTTSpec(rank=2), rngs=nnx.Rngs(0)), nnx.relu)
  before = nnx.clone(model)
  optimizer = nnx.Optimizer(model, optim.with_layer_rates(optax.sgd(0.1), model), wrt=nnx.Param)
  grads = nnx.grad(lambda m: jnp.sum(m(jnp.ones((3, 64))) ** 2))(model)
  optimizer.update(model, grads)
  layer, old = model.layers[0], before.layers[0]
  for name, rate in (("first", 64 / 8 / 2), ("second", 64 / 16 / 2), ("bias", 1.0)):
    step = getattr(layer, name)[...] - getattr(old, name)[...]
    np.testing.assert_allclose(step, -0.1 * rate * grads["layers"][0][name][...], rtol=1e-5)
  # Fitted layers fine-tune at the model's rate; a plain model's optimizer is untouched.
  fitted = BTTDense.from_dense(np.ones((64, 32)), spec=BTTSpec(rank=2))
  assert fitted.first.get_metadata()["lr_scale"] == fitted.second.get_metadata()["lr_scale"] == 1
  tx = optax.sgd(0.1)
  assert optim.with_layer_rates(tx, nnx.Linear(3, 2, rngs=nnx.Rngs(0))) is tx


def test_the_rank_for_a_budget_is_the_largest_that_fits():
  for budget in (10_000, 0.25, 1):
    rank = btt.btt_ranks_for_budget((8, 16), (16, 8), budget)
    count = budget if isinstance(budget, int) else int(budget * 128 * 128)
    assert btt.btt_num_params((8, 16), (16, 8), rank) <= max(count, 8 * 8 * 32)
    assert rank == 16 or btt.btt_num_params((8, 16), (16, 8), rank + 1) > count
  assert btt.btt_ranks_for_budget((8, 16), (16, 8), 10**9) == 16  # at most min(m2, n1)


def test_weights_loaded_into_a_btt_layer_fine_tune_at_the_models_rate():
  """A compressed run rebuilds its model from the config (muP rates) and loads the fitted
  weights: loaded weights, like a fitted layer, train at the model's rate."""
  from tnjax.training import pretrained  # pylint: disable=g-import-not-at-top

  model = nnx.Sequential(BTTDense(64, 32, BTTSpec(rank=2), rngs=nnx.Rngs(0)))
  assert model.layers[0].first.get_metadata()["lr_scale"] == 4.0
  fitted = BTTDense.from_dense(np.ones((64, 32)), spec=BTTSpec(rank=2))
  pretrained.load_arrays(model, {"layers/0/first": fitted.first[...]})
  assert model.layers[0].first.get_metadata()["lr_scale"] == 1.0
  assert model.layers[0].second.get_metadata()["lr_scale"] == 2.0  # not loaded: its own init
  np.testing.assert_array_equal(model.layers[0].first[...], fitted.first[...])


def test_a_users_linear_compresses_to_btt_by_ratio_and_trains():
  model = nnx.Sequential(nnx.Linear(256, 256, rngs=nnx.Rngs(0)))
  small, rows = tnjax.compress(model, {"layers/0": {"kind": "btt", "ratio": 4}})
  assert rows[0]["format"] == "btt" and rows[0]["compression"] >= 4
  assert isinstance(small.layers[0], BTTDense)
  x = jax.random.normal(jax.random.key(0), (8, 256))
  grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(small)
  assert float(jnp.abs(grads["layers"][0]["first"][...]).sum()) > 0
