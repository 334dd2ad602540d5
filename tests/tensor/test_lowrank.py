"""The low-rank format's closed forms: the truncated SVD's error at every rank."""

import numpy as np

from tnjax.tensor import lowrank


def test_truncation_errors_equal_each_ranks_reconstruction_in_float64(x64):
  weight = np.random.default_rng(0).standard_normal((12, 7))
  errors = lowrank.truncation_errors(weight)
  assert sorted(errors) == list(range(1, 8)) and errors[7] == 0.0
  for rank in range(1, 8):
    rebuilt = np.asarray(lowrank.lowrank_to_dense(lowrank.lowrank_from_dense(weight, rank)))
    expected = np.linalg.norm(weight - rebuilt) / np.linalg.norm(weight)
    np.testing.assert_allclose(errors[rank], expected, rtol=1e-10, atol=1e-12)
