"""Tucker-2 convolution: forward vs lax.conv, HOSVD, counts, init variance, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import TuckerConv, TuckerSpec, nhwc_conv, make_conv
from tnjax.tensor import tucker


@pytest.mark.parametrize(
  "strides, padding, dilation", [(1, "SAME", 1), (2, "VALID", 1), (1, ((1, 2), (0, 1)), 2)]
)
def test_forward_equals_lax_conv_with_reconstructed_kernel(x64, strides, padding, dilation):
  layer = TuckerConv(
    6,
    5,
    (3, 2),
    TuckerSpec(in_rank=3, out_rank=2),
    strides=strides,
    padding=padding,
    kernel_dilation=dilation,
    param_dtype=jnp.float64,
    rngs=nnx.Rngs(0),
  )
  layer.bias[...] = jnp.linspace(-1, 1, 5)
  x = jax.random.normal(jax.random.key(1), (2, 9, 8, 6), jnp.float64)
  expected = nhwc_conv(x, layer.to_dense(), (strides,) * 2, padding, (dilation,) * 2)
  np.testing.assert_allclose(layer(x), expected + jnp.linspace(-1, 1, 5), rtol=1e-11, atol=1e-12)


def test_hosvd_is_exact_at_full_rank_and_truncation_error_drops_with_rank(x64):
  kernel = jax.random.normal(jax.random.key(2), (3, 3, 6, 5), jnp.float64)
  full = TuckerConv.from_dense(
    kernel, spec=TuckerSpec(in_rank=6, out_rank=5), param_dtype=jnp.float64
  )
  np.testing.assert_allclose(full.to_dense(), kernel, rtol=1e-10, atol=1e-12)
  errors = [
    float(
      jnp.linalg.norm(tucker.tucker2_to_dense(tucker.tucker2_from_dense(kernel, r, r)) - kernel)
    )
    for r in (1, 3, 5)
  ]
  assert errors[0] > errors[1] > errors[2] > 0
  factors = tucker.tucker2_from_dense(kernel, 4, 3)  # orthonormal factor columns
  np.testing.assert_allclose(factors.in_factor.T @ factors.in_factor, np.eye(4), atol=1e-12)
  np.testing.assert_allclose(factors.out_factor.T @ factors.out_factor, np.eye(3), atol=1e-12)


def test_parameter_count_and_init_variance():
  layer = make_conv(
    {"kind": "tucker", "in_rank": 64, "out_rank": 32, "init": "he_normal"},
    256,
    128,
    3,
    rngs=nnx.Rngs(0),
  )
  assert (
    layer.weight_params
    == tucker.tucker2_num_params((3, 3, 256, 128), 64, 32)
    == 256 * 64 + 9 * 64 * 32 + 32 * 128
  )
  assert layer.num_params == layer.weight_params + 128
  assert layer.compression == pytest.approx(9 * 256 * 128 / layer.weight_params)
  std = float(jnp.std(layer.to_dense()))
  assert std == pytest.approx((2 / (9 * 256)) ** 0.5, rel=0.1)


def test_ranks_above_the_channels_are_refused():
  with pytest.raises(ValueError, match="in_rank=9 must be between 1 and the 8 input channels"):
    make_conv({"kind": "tucker", "in_rank": 9, "out_rank": 2}, 8, 4, 3, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="TuckerSpec.in_rank and out_rank must be >= 1"):
    make_conv({"kind": "tucker", "in_rank": 0}, 8, 4, 3, rngs=nnx.Rngs(0))


def test_an_out_rank_above_the_other_modes_product_is_exact_with_a_zero_core_part(x64):
  # A 1x1 conv 4 -> 6: the out unfolding is 6 x 4, so only 4 singular vectors exist; an
  # out_rank of 6 (the channels) is allowed and the fit stays exact.
  kernel = np.random.default_rng(0).normal(size=(1, 1, 4, 6))
  t = tucker.tucker2_from_dense(kernel, 4, 6)
  np.testing.assert_allclose(tucker.tucker2_to_dense(t), kernel, atol=1e-12)
  np.testing.assert_allclose(
    np.asarray(t.out_factor).T @ np.asarray(t.out_factor), np.eye(6), atol=1e-12
  )
