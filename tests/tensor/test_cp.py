"""CP math (kernels, matrices, ALS, significance) and the CPDense layer, in float64."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import CPDense, CPSpec, nhwc_conv, make_dense
from tnjax.nn.init import target_variance
from tnjax.tensor import cp


def random_factors(sizes, rank, seed=0):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.normal(size=tuple(np.atleast_1d(n)) + (rank,))) for n in sizes]


def test_cp_kernel_to_dense_is_the_sum_of_outer_products_in_hwio_order(x64):
  factors = cp.CPKernel(*random_factors((4, 3, 2, 5), rank=3))  # N, X, Y, S
  expected = np.zeros((3, 2, 5, 4))
  for r in range(3):
    a, b, c, d = (np.asarray(f[:, r]) for f in factors)
    expected += np.einsum("x,y,s,n->xysn", b, c, d, a)
  np.testing.assert_allclose(cp.cp_kernel_to_dense(factors), expected, atol=1e-12)
  assert cp.cp_kernel_num_params((3, 2, 5, 4), 3) == 3 * (4 + 3 + 2 + 5)


def test_small_and_large_cp_kernels_rebuild_to_the_same_sum(x64, monkeypatch):
  # Small kernels take the broadcast-and-sum rebuild, large ones einsum's: both must be the sum.
  factors = cp.CPKernel(*random_factors((8, 3, 3, 8), rank=12, seed=7))
  monkeypatch.setattr(cp, "SMALL_KERNEL_PRODUCTS", 8 * 3 * 3 * 8 * 12)
  small = cp.cp_kernel_to_dense(factors)
  grads_small = jax.grad(lambda f: jnp.sum(jnp.sin(cp.cp_kernel_to_dense(f))))(factors)
  monkeypatch.setattr(cp, "SMALL_KERNEL_PRODUCTS", 0)
  large = cp.cp_kernel_to_dense(factors)
  grads_large = jax.grad(lambda f: jnp.sum(jnp.sin(cp.cp_kernel_to_dense(f))))(factors)
  np.testing.assert_allclose(small, large, atol=1e-12)
  np.testing.assert_allclose(small, cp.cp_full(list(factors)).transpose(1, 2, 3, 0), atol=1e-12)
  for g_small, g_large in zip(grads_small, grads_large):
    np.testing.assert_allclose(g_small, g_large, atol=1e-12)


def test_cp_conv_splits_stride_padding_and_dilation_between_the_1d_passes(x64):
  # Every setting differs between H and W, so swapping the passes' roles would show.
  factors = cp.CPKernel(*random_factors((6, 5, 3, 4), rank=3, seed=1))
  x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 13, 11, 4)))
  settings = dict(strides=(2, 1), padding=((3, 1), (0, 2)), dilation=(1, 2))
  expected = nhwc_conv(
    x,
    cp.cp_kernel_to_dense(factors),
    settings["strides"],
    settings["padding"],
    settings["dilation"],
  )
  np.testing.assert_allclose(cp.cp_kernel_conv(x, factors, **settings), expected, atol=1e-12)


def test_feature_map_r_is_the_conv_with_the_rank_one_filter_r(x64):
  factors = cp.CPKernel(*random_factors((6, 3, 3, 4), rank=3, seed=3))
  x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 9, 9, 4)))
  pads = ((1, 1), (1, 1))
  maps = cp.cp_feature_maps(x, factors, padding=pads)
  assert maps.shape == (2, 9, 9, 3)
  for r in range(3):
    filter_r = jnp.einsum(
      "x,y,s->xys", factors.height_factor[:, r], factors.width_factor[:, r], factors.in_factor[:, r]
    )[..., None]
    np.testing.assert_allclose(
      maps[..., r : r + 1], nhwc_conv(x, filter_r, padding=pads), atol=1e-12
    )
  np.testing.assert_allclose(
    cp.cp_kernel_conv(x, factors, padding=pads), maps @ factors.out_factor.T, atol=1e-12
  )


def test_cp_conv_gradient_matches_the_dense_kernel_gradient(x64):
  factors = cp.CPKernel(*random_factors((4, 3, 3, 2), rank=2, seed=5))
  x = jnp.asarray(np.random.default_rng(6).normal(size=(1, 6, 6, 2)))
  pads = ((1, 1), (1, 1))
  via_cp = jax.grad(lambda f: jnp.sum(cp.cp_kernel_conv(x, f, padding=pads) ** 2))(factors)
  via_dense = jax.grad(
    lambda f: jnp.sum(nhwc_conv(x, cp.cp_kernel_to_dense(f), padding=pads) ** 2)
  )(factors)
  for g_cp, g_dense in zip(via_cp, via_dense):
    np.testing.assert_allclose(g_cp, g_dense, rtol=1e-10)


@pytest.mark.parametrize("sizes", [(8, 3, 3, 5), (6, 7, 5)])
def test_cp_als_recovers_an_exact_rank_r_tensor(x64, sizes):
  factors = random_factors(sizes, rank=3, seed=1)
  tensor = cp.cp_full(factors)
  fitted, error = cp.cp_als(tensor, 3)
  assert error < 1e-6
  np.testing.assert_allclose(cp.cp_full(fitted), tensor, atol=1e-5)
  assert len(fitted) == len(sizes)


def test_cp_als_shares_each_components_magnitude_equally_between_its_factors(x64):
  kernel = np.random.default_rng(3).normal(size=(6, 3, 3, 5)) * 40.0
  fitted, error = cp.cp_als(kernel, 4, n_iter=200)
  norms = np.stack([np.linalg.norm(np.asarray(f), axis=0) for f in fitted])  # (modes, R)
  np.testing.assert_allclose(norms, np.broadcast_to(norms[:1], norms.shape), rtol=1e-10)
  # Balancing keeps the tensor: the stated error is the error of what is returned.
  rebuilt = np.linalg.norm(cp.cp_full(fitted) - kernel) / np.linalg.norm(kernel)
  np.testing.assert_allclose(rebuilt, error, rtol=1e-6)


def test_cp_als_error_falls_with_rank_on_a_random_kernel(x64):
  kernel = np.random.default_rng(2).normal(size=(8, 3, 3, 4))
  errors = [cp.cp_als(kernel, r, n_iter=300)[1] for r in (1, 4, 12)]
  assert 1 > errors[0] > errors[1] > errors[2]


def test_significance_is_the_norm_of_each_rank_one_term_and_ranks_the_scaled_one_first(x64):
  factors = random_factors((4, 3, 3, 2), rank=5, seed=7)
  factors[1] = factors[1].at[:, 3].multiply(50.0)
  significance = cp.cp_component_significance(cp.CPKernel(*factors))
  for r in range(5):
    term = cp.cp_full([f[:, r : r + 1] for f in factors])
    assert float(significance[r]) == pytest.approx(float(jnp.linalg.norm(term)))
  order = cp.rank_components(cp.CPKernel(*factors))
  assert int(order[0]) == 3
  assert np.all(np.diff(np.asarray(significance)[np.asarray(order)]) <= 0)


def test_cp_matrix_forms_agree_with_the_index_definition(x64):
  factors = random_factors([(2, 3), (3, 1), (2, 2)], rank=2, seed=8)  # (m_k, n_k) pairs
  W = cp.cp_matrix_to_dense(cp.CPMatrix(tuple(factors)))
  assert W.shape == (12, 6)
  for (i1, i2, i3), (j1, j2, j3) in itertools.product(
    itertools.product(range(2), range(3), range(2)), itertools.product(range(3), range(1), range(2))
  ):
    value = jnp.sum(factors[0][i1, j1] * factors[1][i2, j2] * factors[2][i3, j3])
    assert float(W[i1 * 6 + i2 * 2 + i3, j1 * 2 + j2 * 2 + j3]) == pytest.approx(float(value))
  x = jnp.asarray(np.random.default_rng(9).normal(size=(2, 5, 12)))
  np.testing.assert_allclose(cp.cp_matrix_matmul(x, cp.CPMatrix(tuple(factors))), x @ W, atol=1e-12)
  assert cp.cp_matrix_num_params((2, 3, 2), (3, 1, 2), 2) == 2 * (6 + 3 + 4)


def build_dense(spec, n_in, n_out, seed=0):
  layer = CPDense(n_in, n_out, spec, rngs=nnx.Rngs(seed), param_dtype=jnp.float64)
  layer.bias[...] = jnp.linspace(-1, 1, n_out)
  return layer


@pytest.mark.parametrize(
  "spec, n_in, n_out",
  [
    (CPSpec(rank=4, in_shape=(4, 8, 8, 4), out_shape=(2, 5, 5, 2)), 1024, 100),
    (CPSpec(rank=3, order=3), 60, 24),
    (CPSpec(rank=2, order=2), 1021, 10),  # automatic shapes, padded
  ],
)
def test_cp_dense_forward_equals_x_times_the_dense_weight(x64, spec, n_in, n_out):
  layer = build_dense(spec, n_in, n_out)
  W = layer.to_dense()
  assert W.shape == (n_in, n_out)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, n_in)))
  np.testing.assert_allclose(layer(x), x @ W + layer.bias[...], rtol=1e-10, atol=1e-12)


def test_cp_dense_counts_and_factory():
  config = {"kind": "cp", "rank": 8, "in_shape": (4, 8, 8, 4), "out_shape": (4, 8, 8, 4)}
  layer = nnx.eval_shape(lambda: make_dense(config, 1024, 1024, rngs=nnx.Rngs(0)))
  assert isinstance(layer, CPDense)
  assert layer.weight_params == 8 * (16 + 64 + 64 + 16)
  assert layer.num_params == 8 * 160 + 1024
  assert layer.compression == pytest.approx(1024 * 1024 / 1280)
  assert layer.shape_description == "4x8x8x4 -> 4x8x8x4 CP rank 8"


def test_cp_dense_from_dense_recovers_a_cp_weight_and_records_the_fit(x64):
  spec = CPSpec(rank=3, in_shape=(3, 4), out_shape=(2, 5))
  source = build_dense(spec, 12, 10, seed=1)
  copy = CPDense.from_dense(source.to_dense(), source.bias[...], spec, param_dtype=jnp.float64)
  assert copy.fit_error < 1e-6
  np.testing.assert_allclose(copy.to_dense(), source.to_dense(), atol=1e-6)
  np.testing.assert_allclose(copy.bias[...], source.bias[...])


def test_cp_dense_weight_has_the_dense_init_variance():
  # Entries share factors, so one draw's variance is noisy: average 16 seeds.
  spec = CPSpec(rank=8, in_shape=(4, 8, 8, 4), out_shape=(2, 4, 4, 2), init="he_normal")
  variances = [
    float(jnp.var(CPDense(1024, 64, spec, rngs=nnx.Rngs(s)).to_dense())) for s in range(16)
  ]
  assert np.mean(variances) == pytest.approx(target_variance("he_normal", 1024, 64), rel=0.25)


@pytest.mark.parametrize(
  "make, message",
  [
    (lambda: CPSpec(order=0), r"CPSpec.order must be >= 1"),
    (lambda: CPSpec(in_shape=(4, 4)), "give both in_shape and out_shape"),
    (lambda: CPSpec(in_shape=(4, 4), out_shape=(2, 2, 2)), "different lengths"),
    (
      lambda: CPDense(15, 4, CPSpec(in_shape=(4, 4), out_shape=(2, 2)), rngs=nnx.Rngs(0)),
      r"CPSpec.in_shape=\(4, 4\) multiplies to 16, but the layer has 15 in features",
    ),
    (lambda: CPDense(16, 4, CPSpec(order=1), rngs=nnx.Rngs(0)), "at least 2 modes"),
    (
      lambda: CPDense(16, 4, CPSpec(order=2), rngs=nnx.Rngs(0))(jnp.ones((2, 15))),
      "expects 16 input features",
    ),
    (lambda: CPDense.from_dense(np.ones(16), None, CPSpec()), "2-D"),
    (lambda: cp.cp_als(np.ones(4), 1), "at least 2 modes"),
    (lambda: cp.cp_als(np.ones((2, 2)), 0), "rank must be >= 1"),
  ],
)
def test_bad_cp_inputs_raise_clear_errors(make, message):
  with pytest.raises(ValueError, match=message):
    make()


def test_cp_als_reports_the_error_of_the_factors_it_returns(x64):
  # The fit comes from the MTTKRP and Gram matrices; it must equal the rebuilt error.
  tensor = np.random.default_rng(3).normal(size=(5, 4, 3, 6))
  for rank, n_iter in ((2, 7), (4, 30), (9, 3)):
    factors, error = cp.cp_als(tensor, rank, n_iter=n_iter, tol=0.0)
    rebuilt = np.asarray(cp.cp_full(factors))
    expected = np.linalg.norm(rebuilt - tensor) / np.linalg.norm(tensor)
    assert error == pytest.approx(expected, rel=1e-9, abs=1e-12)


def _textbook_als(tensor, rank, n_iter):
  """ALS as written in Kolda & Bader: each mode's unfolding times the Khatri-Rao of the others."""
  d, rng = tensor.ndim, np.random.default_rng(0)
  factors = []
  for mode, dim in enumerate(tensor.shape):
    u = np.linalg.svd(np.moveaxis(tensor, mode, 0).reshape(dim, -1), full_matrices=False)[0]
    extra = rng.normal(size=(dim, max(0, rank - u.shape[1])))
    factors.append(np.concatenate([u[:, :rank], extra], axis=1))
  for _ in range(n_iter):
    for mode in range(d):
      others = [factors[m] for m in range(d) if m != mode]
      khatri_rao = others[0]
      for f in others[1:]:
        khatri_rao = np.einsum("ir,jr->ijr", khatri_rao, f).reshape(-1, rank)
      gram = np.prod([f.T @ f for f in others], axis=0)
      unfolding = np.moveaxis(tensor, mode, 0).reshape(tensor.shape[mode], -1)
      factors[mode] = (unfolding @ khatri_rao) @ np.linalg.pinv(gram)
  return factors


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 5), (3, 4, 2, 5), (2, 3, 2, 3, 4)])
def test_cp_als_takes_the_same_steps_as_the_textbook_sweep(x64, shape):
  # cp_als shares two GEMMs per sweep between the modes of each half; the
  # iterates must be those of the per-mode unfolding form.
  tensor = np.random.default_rng(5).normal(size=shape)
  for rank, n_iter in ((2, 1), (3, 4), (7, 3)):
    factors, error = cp.cp_als(tensor, rank, n_iter=n_iter, tol=0.0)
    expected = cp.cp_full([jnp.asarray(f) for f in _textbook_als(tensor, rank, n_iter)])
    np.testing.assert_allclose(cp.cp_full(factors), expected, rtol=1e-8, atol=1e-10)
    assert error == pytest.approx(
      np.linalg.norm(np.asarray(expected) - tensor) / np.linalg.norm(tensor), rel=1e-8, abs=1e-6
    )
