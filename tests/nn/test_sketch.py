"""Tensor sketches: forward vs the reconstructed weight, unbiasedness, counts, fixed U."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from tnjax.training import checkpoint as checkpoint_lib
from tnjax.nn import SketchConv, SketchDense, SketchSpec, nhwc_conv, make_conv, make_dense
from tnjax.tensor import sketch


def test_sign_matrices_have_scaled_signs_and_identity_gram_in_expectation():
  u = sketch.sign_matrices(jax.random.key(0), 2000, 4, 3)
  np.testing.assert_allclose(np.unique(np.abs(np.asarray(u))), [0.5])
  gram = np.einsum("lki,lkj->ij", u, u) / 2000  # mean of U^T U over 2000 draws
  np.testing.assert_allclose(gram, np.eye(3), atol=0.05)


@pytest.mark.parametrize("l, k", [(1, 3), (3, 5)])
def test_sketch_dense_forward_equals_reconstructed_weight(x64, l, k):
  layer = SketchDense(
    12, 7, SketchSpec(sketch_size=k, num_sketches=l), param_dtype=jnp.float64, rngs=nnx.Rngs(1)
  )
  layer.bias[...] = jnp.arange(7.0)
  x = jax.random.normal(jax.random.key(2), (4, 2, 12), jnp.float64)
  W = layer.to_dense()
  np.testing.assert_allclose(layer(x), x @ W + jnp.arange(7.0), rtol=1e-12, atol=1e-12)
  sk = layer.weights()  # the paper's sum, term by term
  expected = sum(sk.u1[i].T @ sk.s1[i] + sk.s2[i] @ sk.u2[i] for i in range(l)) / (2 * l)
  np.testing.assert_allclose(W, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
  "strides, padding, dilation", [(1, "SAME", 1), (2, "VALID", 1), (1, ((2, 0), (1, 1)), 2)]
)
def test_sketch_conv_forward_equals_lax_conv_with_reconstructed_kernel(
  x64, strides, padding, dilation
):
  layer = SketchConv(
    5,
    6,
    (3, 2),
    SketchSpec(sketch_size=2, num_sketches=2),
    strides=strides,
    padding=padding,
    kernel_dilation=dilation,
    param_dtype=jnp.float64,
    rngs=nnx.Rngs(3),
  )
  x = jax.random.normal(jax.random.key(4), (2, 9, 8, 5), jnp.float64)
  expected = nhwc_conv(x, layer.to_dense(), (strides,) * 2, padding, (dilation,) * 2)
  np.testing.assert_allclose(layer(x), expected, rtol=1e-11, atol=1e-12)
  sk = layer.weights()
  K = np.asarray(layer.to_dense())
  terms = (
    sum(
      np.einsum("hwik,ko->hwio", sk.s1[i], sk.u1[i])
      + np.einsum("ki,hwko->hwio", sk.u2[i], sk.s2[i])
      for i in range(2)
    )
    / 4
  )
  np.testing.assert_allclose(K, terms, rtol=1e-12, atol=1e-14)


def test_from_dense_sketches_are_the_paper_products(x64):
  W = jax.random.normal(jax.random.key(5), (10, 6), jnp.float64)
  layer = SketchDense.from_dense(
    W, spec=SketchSpec(sketch_size=3, num_sketches=2), param_dtype=jnp.float64
  )
  u1, u2 = layer.u1[...], layer.u2[...]
  np.testing.assert_allclose(layer.s1[...][1], u1[1] @ W, rtol=1e-12)
  np.testing.assert_allclose(layer.s2[...][0], W @ u2[0].T, rtol=1e-12)
  kernel = jax.random.normal(jax.random.key(6), (3, 3, 4, 5), jnp.float64)
  conv = SketchConv.from_dense(
    kernel, spec=SketchSpec(sketch_size=2, num_sketches=1), param_dtype=jnp.float64
  )
  np.testing.assert_allclose(
    conv.s1[...][0], np.einsum("hwio,ko->hwik", kernel, conv.u1[...][0]), rtol=1e-12
  )
  np.testing.assert_allclose(
    conv.s2[...][0], np.einsum("hwio,ki->hwko", kernel, conv.u2[...][0]), rtol=1e-12
  )


def _mean_estimate_errors(estimate, target, u1_dim, u2_dim, sketch_size, draws, repeats, seed):
  """Relative error of the mean of `draws` estimates, for `repeats` independent sets.

  The sign matrices of every draw come from one sign_matrices call (outside the
  vmap: XLA's CPU compile of a vmapped threefry takes seconds).
  """
  k1, k2 = jax.random.split(jax.random.key(seed))
  n = repeats * draws
  u1 = sketch.sign_matrices(k1, n, sketch_size, u1_dim, jnp.float64)
  u2 = sketch.sign_matrices(k2, n, sketch_size, u2_dim, jnp.float64)
  u1 = u1.reshape(repeats, draws, 1, sketch_size, u1_dim)
  u2 = u2.reshape(repeats, draws, 1, sketch_size, u2_dim)
  means = jax.jit(jax.vmap(lambda a, b: jnp.mean(jax.vmap(estimate)(a, b), axis=0)))(u1, u2)
  errors = jnp.linalg.norm((means - target).reshape(repeats, -1), axis=1)
  return np.asarray(errors / jnp.linalg.norm(target))


def test_dense_and_conv_estimators_are_unbiased_with_error_shrinking_like_one_over_sqrt_draws(x64):
  W = jax.random.normal(jax.random.key(7), (16, 12), jnp.float64)
  K = jax.random.normal(jax.random.key(8), (3, 3, 6, 5), jnp.float64)

  def dense_estimate(u1, u2):
    return sketch.dense_sketch_to_dense(sketch.dense_sketch_from_dense(W, u1, u2))

  def conv_estimate(u1, u2):
    return sketch.conv_sketch_to_dense(sketch.conv_sketch_from_dense(K, u1, u2))

  # (estimate, target, u1's and u2's last dimension, sketch size k)
  cases = ((dense_estimate, W, 16, 12, 4), (conv_estimate, K, 5, 6, 2))
  for estimate, target, u1_dim, u2_dim, k in cases:
    # Average the error over independent repetitions so the ratio is stable.
    errors = {
      n: _mean_estimate_errors(estimate, target, u1_dim, u2_dim, k, n, repeats=8, seed=n).mean()
      for n in (16, 256)
    }
    assert errors[256] < 0.2
    assert 3.0 < errors[16] / errors[256] < 5.3  # sqrt(256 / 16) = 4


def test_parameter_counts_are_exact():
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    dense = make_dense(
      {"kind": "sketch", "sketch_size": 8, "num_sketches": 2}, 300, 100, rngs=nnx.Rngs(0)
    )
    conv = make_conv(
      {"kind": "sketch", "sketch_size": 4, "num_sketches": 3, "use_bias": False},
      64,
      32,
      3,
      rngs=nnx.Rngs(0),
    )
  assert dense.weight_params == sketch.dense_sketch_num_params(300, 100, 2, 8) == 2 * 8 * 400
  assert dense.num_params == 6400 + 100
  assert conv.num_params == sketch.conv_sketch_num_params((3, 3, 64, 32), 3, 4) == 3 * 4 * 9 * 96
  assert conv.compression == pytest.approx(9 * 64 * 32 / (3 * 4 * 9 * 96))
  # U is state but not a parameter.
  assert sum(x.size for x in jax.tree.leaves(nnx.state(dense, nnx.Param))) == dense.num_params


def test_warns_when_the_sketch_is_larger_than_the_dense_layer():
  with pytest.warns(UserWarning, match="more than the dense layer's 200"):
    SketchDense(20, 10, SketchSpec(sketch_size=8, num_sketches=1), rngs=nnx.Rngs(0))


def test_sign_matrices_are_fixed_by_training_and_restored_from_a_checkpoint(tmp_path):
  layer = SketchDense(12, 6, SketchSpec(sketch_size=3, num_sketches=2, seed=11), rngs=nnx.Rngs(0))
  u1_before, s1_before = np.asarray(layer.u1[...]), np.asarray(layer.s1[...])
  optimizer = nnx.Optimizer(layer, optax.sgd(0.1), wrt=nnx.Param)
  x = jax.random.normal(jax.random.key(1), (8, 12))
  grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(layer)
  optimizer.update(layer, grads)
  np.testing.assert_array_equal(layer.u1[...], u1_before)
  assert not np.allclose(layer.s1[...], s1_before)
  # Same seed in the spec: the same U, whatever the model's rngs.
  again = SketchDense(12, 6, SketchSpec(sketch_size=3, num_sketches=2, seed=11), rngs=nnx.Rngs(5))
  np.testing.assert_array_equal(again.u1[...], u1_before)

  checkpointer = checkpoint_lib.Checkpointer(str(tmp_path / "ckpt"), async_save=False)
  checkpointer.save(1, nnx.state(layer), {"note": "sketch"})
  checkpointer.close()
  fresh = SketchDense(12, 6, SketchSpec(sketch_size=3, num_sketches=2), rngs=nnx.Rngs(9))
  assert not np.array_equal(fresh.u1[...], u1_before)
  _, restored, saved_config = checkpoint_lib.Checkpointer(str(tmp_path / "ckpt")).restore_latest(
    nnx.state(fresh)
  )
  assert saved_config == {"note": "sketch"}
  nnx.update(fresh, restored)
  np.testing.assert_array_equal(fresh.u1[...], u1_before)
  np.testing.assert_array_equal(fresh(x), layer(x))


@pytest.mark.parametrize(
  "fields, message",
  [
    ({"sketch_size": 0}, "sketch_size and num_sketches must be >= 1"),
    ({"num_sketches": -1}, "sketch_size and num_sketches must be >= 1"),
  ],
)
def test_bad_specs_name_the_field(fields, message):
  with pytest.raises(ValueError, match=message):
    make_dense({"kind": "sketch", **fields}, 10, 10, rngs=nnx.Rngs(0))


def test_layers_sharing_a_seeded_spec_get_distinct_sign_matrices():
  spec = SketchSpec(sketch_size=3, num_sketches=1, seed=11)
  rngs = nnx.Rngs(0)
  first, second = SketchDense(12, 6, spec, rngs=rngs), SketchDense(12, 6, spec, rngs=rngs)
  assert not np.array_equal(first.u1[...], second.u1[...])
  # ... and still independent of the model's seed: the same two layers from Rngs(7).
  rngs = nnx.Rngs(7)
  again = SketchDense(12, 6, spec, rngs=rngs), SketchDense(12, 6, spec, rngs=rngs)
  np.testing.assert_array_equal(again[1].u1[...], second.u1[...])
