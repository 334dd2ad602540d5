"""The zoo's 2x2 max pooling equals nnx.max_pool, value and gradient (tie-free inputs)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.models.pooling import max_pool_2x2


def _reference(x):
  return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))


@pytest.mark.parametrize("shape", [(3, 8, 6, 4), (2, 7, 5, 3), (1, 2, 2, 1)])  # odd sizes too
def test_max_pool_2x2_matches_nnx_max_pool_and_its_gradient(shape):
  with jax.enable_x64():
    x = jax.random.normal(jax.random.key(0), shape, jnp.float64)  # continuous: no ties
    np.testing.assert_array_equal(max_pool_2x2(x), _reference(x))
    weights = jax.random.normal(jax.random.key(1), _reference(x).shape, jnp.float64)
    grad = lambda pool: jax.grad(lambda v: jnp.sum(pool(v) * weights))(x)
    np.testing.assert_array_equal(grad(max_pool_2x2), grad(_reference))
    # Each window's gradient lands on its maximum only: one nonzero per 2x2 window.
    assert int(jnp.count_nonzero(grad(max_pool_2x2))) == weights.size


def test_a_tied_window_shares_its_gradient():
  # All four inputs of each window equal: each gets a quarter (nnx.max_pool gives the
  # first all of it). The docstring's one stated difference.
  x = jnp.zeros((1, 4, 4, 2))
  weights = jnp.arange(1.0, 9.0).reshape(1, 2, 2, 2)
  grad = jax.grad(lambda v: jnp.sum(max_pool_2x2(v) * weights))(x)
  expected = jnp.repeat(jnp.repeat(weights, 2, axis=1), 2, axis=2) / 4
  np.testing.assert_allclose(grad, expected)
