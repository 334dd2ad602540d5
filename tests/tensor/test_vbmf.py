"""EVBMF (tnjax.tensor.vbmf): the rank a noisy low-rank matrix supports is the planted rank,
in either orientation; pure noise keeps one component; a Tucker-2 kernel's channel ranks
are its planted core's."""

import warnings

import numpy as np
import pytest

from tnjax.tensor.vbmf import tucker2_vbmf_ranks, vbmf_rank


def _planted(rows, cols, rank, noise, seed=0):
  rng = np.random.default_rng(seed)
  signal = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols))
  return signal + noise * np.sqrt(rank) * rng.normal(size=(rows, cols))


@pytest.mark.parametrize(
  "rows, cols, rank, noise",
  [(100, 200, 5, 0.1), (200, 100, 12, 0.3), (64, 64, 3, 0.05), (300, 300, 30, 0.5)],
)
def test_the_planted_rank_of_a_noisy_matrix_is_found(rows, cols, rank, noise):
  assert vbmf_rank(_planted(rows, cols, rank, noise)) == rank


def test_more_noise_keeps_fewer_components_and_pure_noise_keeps_one():
  ranks = [vbmf_rank(_planted(80, 160, 10, noise)) for noise in (0.1, 1.0, 3.0)]
  assert ranks[0] == 10 and ranks[0] >= ranks[1] >= ranks[2]
  assert vbmf_rank(np.random.default_rng(1).normal(size=(100, 200))) == 1
  assert vbmf_rank(np.zeros((10, 20))) == 1


def test_tucker2_ranks_are_the_planted_cores_channel_ranks():
  rng = np.random.default_rng(0)
  core = rng.normal(size=(3, 3, 4, 6))
  kernel = np.einsum("hwab,ia,ob->hwio", core, rng.normal(size=(32, 4)), rng.normal(size=(48, 6)))
  kernel += 0.05 * rng.normal(size=kernel.shape)
  assert tucker2_vbmf_ranks(kernel) == (4, 6)


def test_bad_input_is_refused():
  with pytest.raises(ValueError, match="2-D matrix"):
    vbmf_rank(np.ones((2, 3, 4)))
  with pytest.raises(ValueError, match="not finite|non-finite|NaN|nan"):
    vbmf_rank(np.full((4, 4), np.nan))


def test_exactly_zero_rows_do_not_skew_the_estimate():
  """A weight with dead rows (zero singular values) keeps the rank of its live part."""
  planted = _planted(90, 200, 5, 0.1)
  padded = np.concatenate([planted, np.zeros((10, 200))])
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # no log(0) on the way
    assert vbmf_rank(padded) == vbmf_rank(planted) == 5
