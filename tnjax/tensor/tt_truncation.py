"""TT-SVD's exact error at many rank choices for one matrix, and the fewest weights within
an error target.

Step k of TT-SVD factors a matrix that depends only on the ranks before bond k, so rank
choices that share a prefix share those SVDs. Each step's truncation error is orthogonal
to what the later steps approximate, so the squared errors add: the relative error of
any rank choice is read from the discarded singular values, without forming the cores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tnjax.tensor.tt import check_shapes, eps_rank, interleaved_tensor, tt_num_params


class TTSVDErrors:
  """`error(ranks)`: the relative Frobenius error of `tt_from_dense(W, ..., max_rank=ranks)`
  against W zero-padded to the modes' products (for an unpadded W, exactly its error; for
  a padded one, an upper bound on the error over W's own entries)."""

  def __init__(self, W, in_shape: Sequence[int], out_shape: Sequence[int]):
    self.in_shape, self.out_shape = check_shapes(in_shape, out_shape)
    self._tensor = interleaved_tensor(W, self.in_shape, self.out_shape, "TTSVDErrors")
    self._norm2 = float(np.sum(self._tensor**2)) or 1.0
    self._svds = {}  # ranks before bond k -> (singular values, s * vt) of step k

  def _step(self, prefix: tuple[int, ...]):
    if prefix not in self._svds:
      k = len(prefix)
      if k == 0:
        rest = self._tensor.reshape(self.in_shape[0] * self.out_shape[0], -1)
      else:
        s, scaled_vt = self._step(prefix[:-1])
        rest = scaled_vt[: prefix[-1]].reshape(
          prefix[-1] * self.in_shape[k] * self.out_shape[k], -1
        )
      _, s, vt = np.linalg.svd(rest, full_matrices=False)
      self._svds[prefix] = (s, s[:, None] * vt)
    return self._svds[prefix]

  def effective(self, ranks: Sequence[int]) -> tuple[int, ...]:
    """`ranks` as TT-SVD keeps them: no bond above the singular values its step has (a
    lower rank before a bond can leave it fewer)."""
    kept = []
    for r in ranks:
      kept.append(min(int(r), len(self._step(tuple(kept))[0])))
    return tuple(kept)

  def error(self, ranks: Sequence[int]) -> float:
    ranks = self.effective(ranks)
    discarded = sum(float(np.sum(self._step(ranks[:k])[0][r:] ** 2)) for k, r in enumerate(ranks))
    return math.sqrt(discarded / self._norm2)

  def bound_ranks(self, eps: float, limits: Sequence[int]) -> tuple[int, ...]:
    """The ranks `tt_from_dense(..., max_rank=limits, eps=eps)` keeps: each step drops the
    longest tail within eps / sqrt(d - 1) of ||W|| (TT-SVD's bound)."""
    per_step = eps / math.sqrt(max(len(limits), 1)) * math.sqrt(self._norm2)
    ranks = []
    for limit in limits:
      s = self._step(tuple(ranks))[0]
      ranks.append(min(eps_rank(s, per_step), int(limit), len(s)))
    return tuple(ranks)

  def forget_all_but(self, ranks: Sequence[int]) -> None:
    """Drop the SVDs that neither `ranks` nor a change of one of its bonds will read again
    (each holds up to a copy of W)."""
    ranks = tuple(int(r) for r in ranks)
    self._svds = {p: svd for p, svd in self._svds.items() if p[:-1] == ranks[: len(p) - 1]}


def tt_fewest_weights_within(
  errors: TTSVDErrors, start: Sequence[int], error: float, on_step=None
) -> tuple[int, ...]:
  """Per-bond TT-ranks, at most `start`, with few weights and TT-SVD error <= `error`
  (`errors`: the matrix's TTSVDErrors, whose SVDs the caller may already have taken).

  A greedy descent from `start` (which must meet the target): each move lowers one bond's
  rank by a step, and the move taken saves the most weights per squared error it adds;
  when no move fits, the steps halve (from an eighth of each rank down to one).
  `on_step(ranks, error)` sees each accepted move.
  """
  ranks = list(errors.effective(start))
  now = errors.error(ranks)
  if now > error:
    raise ValueError(f"the start ranks {tuple(ranks)} have error {now:.4g} > {error:g}.")
  weights = lambda rs: tt_num_params(errors.in_shape, errors.out_shape, rs, clip=False)  # noqa: E731
  fraction = 8
  while True:
    moves = []
    for k, rank in enumerate(ranks):
      lower = rank - max(1, rank // fraction)
      if lower < 1:
        continue
      candidate = list(errors.effective(ranks[:k] + [lower] + ranks[k + 1 :]))
      if (candidate_error := errors.error(candidate)) <= error:
        added = max(candidate_error**2 - now**2, 1e-15)
        moves.append(((weights(ranks) - weights(candidate)) / added, candidate, candidate_error))
    if moves:
      _, ranks, now = max(moves, key=lambda move: move[0])
      errors.forget_all_but(ranks)
      if on_step is not None:
        on_step(tuple(ranks), now)
    elif all(rank // fraction == 0 for rank in ranks):  # single steps failed: done
      return tuple(ranks)
    else:
      fraction *= 2
