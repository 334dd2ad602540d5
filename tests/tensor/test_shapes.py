"""Mode shapes: prime factors, balanced splits, padding of badly factoring sizes."""

import math

import pytest

from tnjax.tensor import balanced_factors, factorize, imbalance, prime_factors


def test_prime_factors_multiply_back_in_ascending_order():
  assert prime_factors(1) == []
  assert prime_factors(1021) == [1021]
  assert prime_factors(25088) == [2] * 9 + [7, 7]
  for n in (2, 12, 360, 1024, 9999):
    factors = prime_factors(n)
    assert math.prod(factors) == n and factors == sorted(factors)


@pytest.mark.parametrize(
  "n, order, expected",
  [
    (1024, 4, (4, 8, 8, 4)),
    (4096, 6, (4, 4, 4, 4, 4, 4)),
    (4096, 3, (16, 16, 16)),
    (784, 4, (4, 7, 7, 4)),
    (3072, 6, (3, 4, 4, 4, 4, 4)),
    (1024, 10, (2,) * 10),
    (10, 2, (2, 5)),
    (7, 3, (1, 7, 1)),
    (1, 3, (1, 1, 1)),
    (97, 1, (97,)),
  ],
)
def test_balanced_factors_known_splits(n, order, expected):
  assert balanced_factors(n, order) == expected


@pytest.mark.parametrize("n", [12, 360, 784, 1000, 1024, 4096, 25088, 262144])
@pytest.mark.parametrize("order", [2, 3, 4, 6])
def test_balanced_factors_are_exact_and_small_at_the_ends(n, order):
  factors = balanced_factors(n, order)
  assert len(factors) == order and math.prod(factors) == n
  # Small-large-small: boundary cores (outer rank 1) get the smallest modes.
  assert min(factors[0], factors[-1]) == min(factors)
  assert max(factors) in factors[1:-1] or order <= 2


@pytest.mark.parametrize("n, order", [(1024, 4), (4096, 6), (784, 4), (25088, 6), (262144, 6)])
def test_balanced_factors_of_smooth_sizes_are_close_to_the_ideal(n, order):
  assert imbalance(balanced_factors(n, order)) < 1.5


def test_imbalance_is_largest_factor_over_the_geometric_mean():
  assert imbalance((4, 4, 4)) == pytest.approx(1.0)
  assert imbalance((4, 8, 8, 4)) == pytest.approx(8 / 32**0.5)
  assert imbalance((1, 1, 1021, 1)) == pytest.approx(1021**0.75)


def test_factorize_keeps_well_factoring_sizes_unpadded():
  for n, order in [(1024, 4), (4096, 6), (784, 4), (25088, 6), (10, 2), (3072, 6)]:
    assert factorize(n, order) == balanced_factors(n, order)


def test_factorize_pads_a_prime_to_the_next_balanced_size():
  assert factorize(1021, 4) == (4, 8, 8, 4)
  assert math.prod(factorize(1021, 4)) == 1024
  # 2 x 1009 splits badly in two; a nearby size splits evenly.
  padded = factorize(2018, 2)
  assert math.prod(padded) >= 2018 and imbalance(padded) < 1.05
  assert math.prod(padded) <= 2018 * 1.1


def test_factorize_without_padding_allowance_returns_the_exact_split():
  assert factorize(1021, 4, max_padding=0) == (1, 1, 1021, 1)
  # With no size in the window splitting well, the best-balanced one is used.
  assert factorize(7, 3) == (1, 7, 1)


@pytest.mark.parametrize(
  "call, message",
  [
    (lambda: factorize(0, 3), "size 0: it must be >= 1"),
    (lambda: factorize(10, 0), "order must be >= 1, got 0"),
    (lambda: factorize(10, 2, max_padding=-0.1), "max_padding must be >= 0"),
    (lambda: balanced_factors(10, 0), "order must be >= 1, got 0"),
    (lambda: balanced_factors(0, 2), "positive integer, got 0"),
    (lambda: prime_factors(-3), "positive integer, got -3"),
  ],
)
def test_bad_sizes_and_orders_raise_clear_errors(call, message):
  with pytest.raises(ValueError, match=message):
    call()
