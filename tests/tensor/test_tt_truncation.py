"""TT-SVD's exact error at any ranks, and the fewest-weights descent for an error target."""

import itertools

import numpy as np
import pytest

from tnjax.tensor import tt
from tnjax.tensor.tt_truncation import TTSVDErrors, tt_fewest_weights_within


def _decaying(shape, seed=0, power=1.0):
  """A matrix with a slowly decaying spectrum, as trained layers have."""
  rng = np.random.default_rng(seed)
  u, _ = np.linalg.qr(rng.normal(size=(shape[0], min(shape))))
  v, _ = np.linalg.qr(rng.normal(size=(shape[1], min(shape))))
  return (u * np.arange(1, min(shape) + 1) ** -power) @ v.T


def _reconstruction_error(W, in_shape, out_shape, ranks, *, padded=False):
  dense = np.asarray(tt.tt_to_dense(tt.tt_from_dense(W, in_shape, out_shape, max_rank=ranks)))
  if padded:  # against W zero-padded to the modes' products, as TT-SVD factors it
    W = np.pad(W, [(0, dense.shape[0] - W.shape[0]), (0, dense.shape[1] - W.shape[1])])
  return np.linalg.norm(dense[: W.shape[0], : W.shape[1]] - W) / np.linalg.norm(W)


@pytest.mark.parametrize(
  "shape, in_shape, out_shape",
  [((24, 30), (2, 3, 4), (5, 3, 2)), ((20, 9), (3, 7), (3, 3))],  # the second is padded
)
def test_the_error_read_from_singular_values_equals_the_reconstruction_error(
  x64, shape, in_shape, out_shape
):
  W = _decaying(shape)
  errors = TTSVDErrors(W, in_shape, out_shape)
  limits = tt.max_tt_ranks(in_shape, out_shape)
  for ranks in itertools.product(*[sorted({1, 2, limit // 2 or 1, limit}) for limit in limits]):
    error = errors.error(ranks)
    exact = _reconstruction_error(W, in_shape, out_shape, ranks, padded=True)
    np.testing.assert_allclose(error, exact, rtol=1e-9, atol=1e-12, err_msg=str(ranks))
    # Over W's own entries (what a layer's fit_error measures) it is an upper bound.
    assert _reconstruction_error(W, in_shape, out_shape, ranks) <= error + 1e-12


def test_the_descent_meets_the_target_with_fewer_weights_than_the_svd_bound(x64):
  in_shape, out_shape = (4, 4, 4, 4), (4, 4, 4, 4)
  W = _decaying((256, 256), seed=3, power=0.5)
  target = 0.3
  bound = tt.tt_from_dense(W, in_shape, out_shape, eps=target)
  start = bound.ranks[1:-1]
  ranks = tt_fewest_weights_within(TTSVDErrors(W, in_shape, out_shape), start, target)
  assert _reconstruction_error(W, in_shape, out_shape, ranks) <= target
  fewer = tt.tt_num_params(in_shape, out_shape, ranks, clip=False)
  assert fewer < 0.8 * tt.tt_num_params(in_shape, out_shape, start, clip=False), (start, ranks)
  # It stops only where lowering any one bond by one would break the target.
  for k in range(len(ranks)):
    if ranks[k] > 1:
      lower = ranks[:k] + (ranks[k] - 1,) + ranks[k + 1 :]
      assert _reconstruction_error(W, in_shape, out_shape, lower) > target


def test_a_start_that_misses_the_target_is_refused(x64):
  W = _decaying((16, 16))
  with pytest.raises(ValueError, match=r"start ranks \(1, 1, 1\) have error"):
    tt_fewest_weights_within(TTSVDErrors(W, (2, 2, 2, 2), (2, 2, 2, 2)), (1, 1, 1), 0.01)
