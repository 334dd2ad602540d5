"""contract.py: cached einsum plans and the CPU GEMM with its custom gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tnjax.tensor import contract


def test_planned_einsum_matches_einsum_and_plans_once(x64):
  rng = np.random.default_rng(0)
  a, b, c = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(5, 2))
  contract.plan_path.cache_clear()
  for _ in range(3):
    out = contract.planned_einsum("ij,jk,kl->il", a, b, c)
  np.testing.assert_allclose(out, a @ b @ c, rtol=1e-12)
  info = contract.plan_path.cache_info()
  assert (info.misses, info.hits) == (1, 2)


# Shapes on both sides of the transposed-operand choices in the custom VJP:
# a smaller than g, g smaller than a, and both above _MAX_TRANSPOSED_ELEMENTS.
@pytest.mark.parametrize("m, k, n", [(3, 7, 50), (60, 9, 2), (1100, 1000, 1000)])
def test_gemm_value_and_gradient_equal_plain_matmul(x64, m, k, n):
  rng = np.random.default_rng(1)
  a, b = jnp.asarray(rng.normal(size=(m, k))), jnp.asarray(rng.normal(size=(k, n)))
  weights = jnp.asarray(rng.normal(size=(m, n)))
  np.testing.assert_allclose(contract.gemm(a, b), a @ b, rtol=1e-10, atol=1e-10)

  def loss(fn):
    return lambda a, b: jnp.sum(jnp.tanh(fn(a, b)) * weights)

  expected = jax.grad(loss(jnp.matmul), argnums=(0, 1))(a, b)
  actual = jax.jit(jax.grad(loss(contract.gemm), argnums=(0, 1)))(a, b)
  for got, want in zip(actual, expected):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_gemm_keeps_the_input_dtype_of_gradients_with_preferred_element_type():
  a = jnp.ones((4, 3), jnp.bfloat16)
  b = jnp.ones((3, 5), jnp.bfloat16)
  out = contract.gemm(a, b, preferred_element_type=jnp.float32)
  assert out.dtype == jnp.float32 and float(out[0, 0]) == 3.0
  grads = jax.grad(
    lambda a, b: contract.gemm(a, b, preferred_element_type=jnp.float32).sum(), argnums=(0, 1)
  )(a, b)
  assert grads[0].dtype == jnp.bfloat16 and grads[1].dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(grads[0], np.float32), np.full((4, 3), 5.0))
