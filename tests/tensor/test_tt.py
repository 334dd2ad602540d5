"""TT-matrix math: contraction, reconstruction, TT-SVD, counts, shapes, errors."""

import itertools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tnjax.tensor import (
  check_shapes,
  max_tt_ranks,
  tt_core_shapes,
  tt_matmul,
  tt_num_params,
  tt_ranks,
  tt_from_dense,
  tt_to_dense,
  TTMatrix,
)
from tnjax.tensor import tt
from tnjax.tensor.tt import plan_tt_split


def random_cores(in_shape, out_shape, ranks, seed=0):
  rng = np.random.default_rng(seed)
  return TTMatrix(
    tuple(jnp.asarray(rng.normal(size=s)) for s in tt_core_shapes(in_shape, out_shape, ranks))
  )


def loop_reconstruction(w):
  """W[(i), (j)] as an explicit product of core slices: an independent reference."""
  cores = w.cores
  in_shape = [c.shape[1] for c in cores]
  out_shape = [c.shape[2] for c in cores]
  W = np.zeros((math.prod(in_shape), math.prod(out_shape)))
  for i in itertools.product(*map(range, in_shape)):
    for j in itertools.product(*map(range, out_shape)):
      product = np.eye(1)
      for k, core in enumerate(cores):
        product = product @ np.asarray(core)[:, i[k], j[k], :]
      W[np.ravel_multi_index(i, in_shape), np.ravel_multi_index(j, out_shape)] = product[0, 0]
  return W


@pytest.mark.parametrize(
  "in_shape, out_shape, ranks",
  [
    ((4, 8, 8, 4), (4, 8, 8, 4), 8),
    ((4, 8, 8, 4), (4, 8, 8, 4), 1),
    ((2, 3), (5, 7), 2),
    ((1, 2, 5, 1), (3, 1, 2, 2), (2, 3, 2)),
    ((3, 4, 2), (2, 2, 5), (3, 2)),
    ((6,), (5,), 1),
    ((2, 3, 2, 2, 1, 2), (2, 2, 1, 3, 2, 2), 3),
  ],
)
@pytest.mark.parametrize("batch_shape", [(), (7,), (2, 3)])
def test_tt_matmul_equals_dense_product_in_float64(x64, in_shape, out_shape, ranks, batch_shape):
  cores = random_cores(in_shape, out_shape, ranks)
  x = jnp.asarray(np.random.default_rng(1).normal(size=batch_shape + (math.prod(in_shape),)))
  expected = x @ tt_to_dense(cores)
  actual = jax.jit(tt_matmul)(x, cores)  # one compile per case instead of one per op
  assert actual.shape == batch_shape + (math.prod(out_shape),)
  np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


def test_every_split_point_gives_the_same_product(x64, monkeypatch):
  cores = random_cores((2, 3, 2, 2), (3, 2, 2, 2), (2, 3, 2))
  x = jnp.asarray(np.random.default_rng(2).normal(size=(5, 24)))
  expected = x @ tt_to_dense(cores)
  core_shapes = tuple(tuple(c.shape) for c in cores.cores)
  assert all(plan_tt_split(core_shapes, batch) in (1, 2, 3) for batch in (1, 100, 10000))
  for h in (1, 2, 3):
    monkeypatch.setattr("tnjax.tensor.tt.plan_tt_split", lambda shapes, b, h=h: h)
    np.testing.assert_allclose(tt_matmul(x, cores), expected, rtol=1e-10, atol=1e-12)


def test_tt_to_dense_matches_explicit_products(x64):
  cores = random_cores((2, 3, 2), (3, 2, 2), (2, 3))
  np.testing.assert_allclose(tt_to_dense(cores), loop_reconstruction(cores), rtol=1e-12, atol=1e-12)


def test_tt_from_dense_full_rank_is_exact(x64):
  W = np.random.default_rng(3).normal(size=(64, 48))
  cores = tt_from_dense(W, (4, 4, 4), (4, 3, 4))
  np.testing.assert_allclose(tt_to_dense(cores), W, atol=1e-10)


def test_tt_from_dense_error_falls_as_rank_grows(x64):
  W = np.random.default_rng(4).normal(size=(64, 64))
  errors = []
  for rank in (1, 2, 4, 8, 16):  # 16 = 4*4 is the largest useful rank here
    approx = tt_to_dense(tt_from_dense(W, (4, 4, 4), (4, 4, 4), max_rank=rank))
    errors.append(np.linalg.norm(approx - W) / np.linalg.norm(W))
  assert all(b <= a + 1e-12 for a, b in zip(errors, errors[1:])), errors
  assert errors[0] > 0.5 and errors[-1] < 1e-10


def test_tt_from_dense_eps_bounds_the_error_and_ranks_shrink_as_eps_grows(x64):
  rng = np.random.default_rng(5)
  # A TT-rank-6 matrix plus small noise: a decaying spectrum for eps to cut.
  W = tt_to_dense(random_cores((4, 4, 4), (4, 4, 4), 6)) + 0.01 * rng.normal(size=(64, 64))
  full_ranks = [c.shape[3] for c in tt_from_dense(W, (4, 4, 4), (4, 4, 4)).cores[:-1]]
  assert full_ranks == [16, 16]
  previous = full_ranks
  for eps in (1e-3, 0.05, 0.2, 0.5, 0.9):
    cores = tt_from_dense(W, (4, 4, 4), (4, 4, 4), eps=eps)
    error = np.linalg.norm(tt_to_dense(cores) - W) / np.linalg.norm(W)
    assert error <= eps + 1e-12, (eps, error)
    ranks = [c.shape[3] for c in cores.cores[:-1]]
    assert all(r <= p for r, p in zip(ranks, previous)), (eps, ranks, previous)
    previous = ranks
  assert previous != full_ranks and previous[0] < 6


def test_tt_from_dense_eps_and_max_rank_together_take_the_smaller(x64):
  W = tt_to_dense(random_cores((4, 4, 4), (4, 4, 4), 6, seed=7))
  assert [c.shape[3] for c in tt_from_dense(W, (4, 4, 4), (4, 4, 4), eps=1e-10).cores] == [6, 6, 1]
  both = tt_from_dense(W, (4, 4, 4), (4, 4, 4), max_rank=(3, 5), eps=1e-10)
  assert [c.shape for c in both.cores] == [(1, 4, 4, 3), (3, 4, 4, 5), (5, 4, 4, 1)]


def test_tt_from_dense_recovers_exact_tt_ranks(x64):
  cores = random_cores((2, 3, 2, 2), (2, 2, 3, 2), 2, seed=6)
  found = tt_from_dense(tt_to_dense(cores), (2, 3, 2, 2), (2, 2, 3, 2), eps=1e-10)
  assert list(found.ranks) == [1, 2, 2, 2, 1]


@pytest.mark.parametrize(
  "shape, rank, params",
  [
    ((4, 8, 8, 4), 1, 160),
    ((4, 8, 8, 4), 2, 576),
    ((4, 8, 8, 4), 4, 2176),
    ((4, 8, 8, 4), 8, 8448),
    ((4, 4, 4, 4, 4), 2, 256),
    ((4, 4, 4, 4, 4), 4, 896),
    ((4, 4, 4, 4, 4), 8, 3328),
    ((2,) * 10, 2, 144),
  ],
)
def test_tt_num_params_of_novikov_mnist_layers(shape, rank, params):
  assert tt_num_params(shape, shape, rank) == params


@pytest.mark.parametrize(
  "in_shape, out_shape, budget",
  [
    ((4, 8, 8, 4), (4, 8, 8, 4), 8448),
    ((4, 8, 8, 4), (4, 8, 8, 4), 8447),
    ((4, 8, 8, 4), (4, 8, 8, 4), 0.01),
    ((2,) * 10, (2,) * 10, 1824),
    ((3, 5), (4, 7), 10**6),
    ((2, 7, 8, 8, 7, 4), (4,) * 6, 2000),
  ],
)
def test_tt_ranks_for_budget_is_the_largest_rank_that_fits(in_shape, out_shape, budget):
  rank = tt.tt_ranks_for_budget(in_shape, out_shape, budget)
  limit = budget if isinstance(budget, int) else int(budget * math.prod(in_shape + out_shape))
  count = lambda r: tt_num_params(
    in_shape, out_shape, [min(r, m) for m in max_tt_ranks(in_shape, out_shape)]
  )
  assert count(rank) <= limit or rank == 1
  assert rank == max(max_tt_ranks(in_shape, out_shape)) or count(rank + 1) > limit
  assert tt.tt_ranks_for_budget((4, 8, 8, 4), (4, 8, 8, 4), 8448) == 8


def test_2_pow_10_rank_8_counts_without_the_redundant_boundary_ranks():
  # Novikov's 2,112 keeps rank 8 on the first and last bonds, where at most
  # 2*2 = 4 is useful; tnjax clips them to 4 (same W family), leaving 1,824.
  unclipped = 2 * (1 * 2 * 2 * 8) + 8 * (8 * 2 * 2 * 8)
  assert unclipped == 2112
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # one max rank trimmed at the edges is the convention
    assert tt_num_params((2,) * 10, (2,) * 10, 8) == 1824
  with pytest.warns(UserWarning, match="clipped"):  # per-bond ranks were meant literally
    assert tt_num_params((2,) * 10, (2,) * 10, (8,) * 9) == 1824
  assert tt_num_params((2,) * 10, (2,) * 10, (4, 8, 8, 8, 8, 8, 8, 8, 4)) == 1824


@pytest.mark.parametrize("rank, compression", [(4, 50_972), (2, 194_622), (1, 713_614)])
def test_vgg_fc6_compression_matches_novikov(rank, compression):
  params = tt_num_params((2, 7, 8, 8, 7, 4), (4,) * 6, rank)
  assert math.floor(25088 * 4096 / params) == compression


def test_rank_above_the_useful_maximum_is_clipped_with_a_warning(x64):
  assert max_tt_ranks((2, 2, 2), (2, 2, 2)) == (4, 4)
  assert max_tt_ranks((4, 8, 8, 4), (4, 8, 8, 4)) == (16, 1024, 16)
  with pytest.warns(UserWarning, match=r"clipped to \(4, 4\)"):
    shapes = tt_core_shapes((2, 2, 2), (2, 2, 2), 10)
  assert shapes == [(1, 2, 2, 4), (4, 2, 2, 4), (4, 2, 2, 1)]
  W = np.random.default_rng(8).normal(size=(8, 8))
  with pytest.warns(UserWarning, match="clipped"):
    cores = tt_from_dense(W, (2, 2, 2), (2, 2, 2), max_rank=10)
  assert [c.shape for c in cores.cores] == shapes
  np.testing.assert_allclose(tt_to_dense(cores), W, atol=1e-10)


def test_tt_ranks_accepts_one_int_inner_ranks_or_full_ranks():
  assert tt_ranks((4, 8, 8, 4), (4, 8, 8, 4), 8) == (1, 8, 8, 8, 1)
  assert tt_ranks((4, 8, 8, 4), (4, 8, 8, 4), (2, 3, 4)) == (1, 2, 3, 4, 1)
  assert tt_ranks((4, 8, 8, 4), (4, 8, 8, 4), (1, 2, 3, 4, 1)) == (1, 2, 3, 4, 1)
  assert tt_ranks((6,), (5,), 3) == (1, 1)


def test_check_shapes_returns_int_tuples():
  assert check_shapes([4, np.int64(8)], (2, 5)) == ((4, 8), (2, 5))


@pytest.mark.parametrize(
  "call, message",
  [
    (
      lambda: check_shapes((4, 4), (4, 4, 4)),
      r"\(4, 4\) and out_shape \(4, 4, 4\) have different lengths",
    ),
    (
      lambda: check_shapes((4, 0), (4, 4)),
      "in_shape must be a non-empty sequence of positive ints",
    ),
    (lambda: check_shapes((4, 4), ()), "out_shape must be a non-empty sequence"),
    (lambda: tt_core_shapes((4, 4), (4, 4, 4), 2), "different lengths"),
    (lambda: tt_core_shapes((4, 4), (4, 4), 0), "TT-ranks must be >= 1"),
    (lambda: tt_ranks((4, 4, 4), (4, 4, 4), (2, 0)), r"TT-ranks must be >= 1, got \(2, 0\)"),
    (lambda: tt_ranks((4, 4, 4), (4, 4, 4), (2, 2, 2)), "2 per-bond ints for 3 cores"),
    (
      lambda: tt_from_dense(np.zeros((17, 16)), (4, 4), (4, 4)),
      r"W has shape \(17, 16\).*\(16, 16\) matrix",
    ),
    (lambda: tt_from_dense(np.zeros((16, 16)), (4, 4), (4, 4), eps=-0.1), "eps must be >= 0"),
    (lambda: tt_matmul(jnp.ones((2, 10)), random_cores((4, 4), (4, 4), 2)), r"10 features.*expect"),
  ],
)
def test_bad_shapes_and_ranks_raise_clear_errors(call, message):
  with pytest.raises(ValueError, match=message):
    call()


def test_dense_and_factored_methods_agree_in_value_and_gradient(x64):
  rng = np.random.default_rng(7)
  shapes = tt.tt_core_shapes((2, 3, 4), (3, 2, 2), 3)
  cores = tt.TTMatrix(tuple(jnp.asarray(rng.normal(size=s)) for s in shapes))
  x = jnp.asarray(rng.normal(size=(5, 2, 24)))
  expected = x @ tt.tt_to_dense(cores)
  grads = {}
  for method in ("factored", "dense", "auto"):
    np.testing.assert_allclose(tt.tt_matmul(x, cores, method=method), expected, rtol=1e-12)
    grads[method] = jax.grad(lambda c: jnp.sum(jnp.sin(tt.tt_matmul(x, c, method=method))))(cores)
  for a, b in zip(grads["factored"].cores, grads["dense"].cores):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
  with pytest.raises(ValueError, match="method='svd' is unknown"):
    tt.tt_matmul(x, cores, method="svd")


def test_auto_method_rebuilds_w_only_for_large_batches_on_small_layers():
  mnist = tuple(tt.tt_core_shapes((4, 8, 8, 4), (4, 8, 8, 4), 8))
  assert [tt.tt_matmul_path(mnist, b) for b in (1, 100, 300, 1000, 4096)] == [
    "factored",
    "factored",
    "factored",
    "dense",
    "dense",
  ]
  fc6 = tuple(tt.tt_core_shapes((2, 7, 8, 8, 7, 4), (4,) * 6, 4))
  assert {tt.tt_matmul_path(fc6, b) for b in (1, 128, 1024, 8192)} == {"factored"}
