"""Input checks shared by the decompositions: one clear error instead of a hang.

LAPACK's SVD never returns on a matrix holding Inf and fails with 'SVD did not
converge' on NaN, so every host-side decomposition checks its input first.
"""

from __future__ import annotations

import numpy as np


def require_finite(array: np.ndarray, what: str) -> np.ndarray:
  """`array` unchanged, or ValueError naming how many entries are NaN / infinite."""
  bad = ~np.isfinite(array)
  if bad.any():
    nans, infs = int(np.isnan(array).sum()), int(np.isinf(array).sum())
    raise ValueError(
      f"{what} holds {nans} NaN and {infs} infinite entries (of {array.size}); "
      "decompose a finite weight (check the run that produced it for divergence)."
    )
  return array
