"""TTConv: both forward paths vs lax.conv with the reconstructed kernel, TT-SVD, counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import TTConv, TTSpec, nhwc_conv, make_conv
from tnjax.tensor import tt


@pytest.mark.parametrize("method", ["factored", "dense"])
@pytest.mark.parametrize(
  "strides, padding, dilation", [(1, "SAME", 1), (2, "VALID", 1), (1, ((2, 0), (1, 1)), 2)]
)
def test_forward_equals_lax_conv_with_reconstructed_kernel(x64, method, strides, padding, dilation):
  layer = TTConv(
    8,
    12,
    (3, 2),
    TTSpec(ranks=3, in_shape=(2, 4), out_shape=(3, 4), method=method),
    strides=strides,
    padding=padding,
    kernel_dilation=dilation,
    param_dtype=jnp.float64,
    rngs=nnx.Rngs(0),
  )
  layer.bias[...] = jnp.arange(12.0)
  x = jax.random.normal(jax.random.key(1), (2, 9, 8, 8), jnp.float64)
  expected = nhwc_conv(x, layer.to_dense(), (strides,) * 2, padding, (dilation,) * 2)
  np.testing.assert_allclose(layer(x), expected + jnp.arange(12.0), rtol=1e-11, atol=1e-12)


def test_kernel_is_the_tt_matrix_with_the_spatial_core_first(x64):
  layer = TTConv(
    6,
    4,
    3,
    TTSpec(ranks=2, in_shape=(2, 3), out_shape=(2, 2)),
    param_dtype=jnp.float64,
    rngs=nnx.Rngs(2),
  )
  cores = [c[...] for c in layer.cores]
  assert [c.shape for c in cores] == [(1, 9, 1, 2), (2, 2, 2, 2), (2, 3, 2, 1)]
  K = np.asarray(layer.to_dense())
  s, i1, i2, j1, j2 = 4, 1, 2, 0, 1  # K[s, (i1 i2), (j1 j2)] = G0[s] G1[i1, j1] G2[i2, j2]
  entry = cores[0][0, s, 0] @ cores[1][:, i1, j1, :] @ cores[2][:, i2, j2, 0]
  np.testing.assert_allclose(K.reshape(9, 6, 4)[s, i1 * 3 + i2, j1 * 2 + j2], entry, rtol=1e-12)


def test_both_paths_give_the_same_gradients(x64):
  x = jax.random.normal(jax.random.key(3), (2, 6, 6, 4), jnp.float64)
  grads = []
  for method in ("factored", "dense"):
    spec = TTSpec(ranks=2, in_shape=(2, 2), out_shape=(2, 3), method=method)
    layer = TTConv(4, 6, 3, spec, param_dtype=jnp.float64, rngs=nnx.Rngs(4))
    grads.append(nnx.grad(lambda m: jnp.sum(jnp.sin(m(x))))(layer))
  for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_from_dense_is_exact_at_full_rank_and_counts_are_exact(x64):
  kernel = jax.random.normal(jax.random.key(5), (3, 3, 8, 6), jnp.float64)
  spec = TTSpec(ranks=100, in_shape=(2, 4), out_shape=(2, 3))
  layer = TTConv.from_dense(kernel, spec=spec, param_dtype=jnp.float64)
  np.testing.assert_allclose(layer.to_dense(), kernel, rtol=1e-10, atol=1e-12)
  small = make_conv(
    {"kind": "tt", "ranks": 4, "in_shape": (4, 8, 8), "out_shape": (4, 8, 8)},
    256,
    256,
    3,
    rngs=nnx.Rngs(0),
  )
  expected = tt.tt_num_params((9, 4, 8, 8), (1, 4, 8, 8), 4)
  assert small.weight_params == expected == 9 * 4 + 4 * 4 * 4 * 4 + 4 * 8 * 8 * 4 + 4 * 8 * 8
  assert small.compression == pytest.approx(9 * 256 * 256 / expected)


def test_auto_picks_factored_for_few_pixels_and_dense_for_many():
  # 256->256 at rank 4: for one 3x3 patch the factored chain is far cheaper than
  # rebuilding 590k kernel entries; at batch 8 on 32x32 maps the patches' TT
  # intermediates dwarf one dense conv (measured on 2 CPU cores, fwd: 647 ms
  # factored vs 160 ms dense).
  vgg_like = make_conv(
    {"kind": "tt", "ranks": 4, "in_shape": (4, 8, 8), "out_shape": (4, 8, 8)},
    256,
    256,
    3,
    padding="VALID",
    rngs=nnx.Rngs(0),
  )
  assert vgg_like.execution_path((1, 3, 3, 256)) == "factored"
  assert vgg_like.execution_path((8, 32, 32, 256)) == "dense"
  nearly_full = make_conv(
    {"kind": "tt", "ranks": 64, "in_shape": (4, 4), "out_shape": (4, 4)},
    16,
    16,
    3,
    rngs=nnx.Rngs(0),
  )
  assert nearly_full.execution_path((32, 32, 32, 16)) == "dense"


def test_channel_modes_must_multiply_exactly():
  with pytest.raises(ValueError, match="multiplies to 8, but the layer has 6 in features"):
    make_conv(
      {"kind": "tt", "ranks": 2, "in_shape": (2, 4), "out_shape": (2, 2)}, 6, 4, 3, rngs=nnx.Rngs(0)
    )
  with pytest.raises(ValueError, match="TTSpec.method='svd' is not a path"):
    TTSpec(ranks=2, order=2, method="svd")


def test_automatic_channel_modes_are_exact_even_for_three_channels():
  layer = make_conv({"kind": "tt", "ranks": 4}, 3, 64, 3, rngs=nnx.Rngs(0))
  assert np.prod(layer.in_shape) == 3 and np.prod(layer.out_shape) == 64
  assert layer(jnp.ones((1, 8, 8, 3))).shape == (1, 8, 8, 64)


def test_a_precision_given_as_nnx_layers_take_it_a_string_works_on_the_factored_path():
  conv = nnx.Conv(4, 6, (3, 3), precision="highest", rngs=nnx.Rngs(0))
  layer = TTConv.from_conv(conv, TTSpec(ranks=4, method="factored"))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 4)), jnp.float32)
  np.testing.assert_allclose(layer(x), layer.to_conv()(x), rtol=1e-4, atol=1e-5)
  assert layer.to_conv().precision == "highest"
