"""Empirical variational Bayesian matrix factorisation (EVBMF, Nakajima et al. 2013): the
rank a matrix supports above its own noise level, estimated from the matrix alone.

Kim et al. (2016) size Tucker-2 convolutions with it (the ranks of a kernel's input- and
output-channel unfoldings); tnjax uses it for `lowrank` and `tucker` layers (a plan's
`"vbmf": True`) and as the rank search's starting size for them.

For Y of shape (L, M), L <= M, with singular values s_h, the EVB solution keeps the
components with s_h > sqrt(M * sigma2 * xi), xi = (1 + tau) (1 + alpha / tau),
alpha = L / M, tau = 2.5129 sqrt(alpha); the noise variance sigma2 minimises the negative
free energy of the global analytic solution, a one-dimensional bounded problem.
"""

from __future__ import annotations

import math

import numpy as np

from tnjax.tensor import checks

TAU_FACTOR = 2.5129  # tau-bar = 2.5129 sqrt(alpha): Nakajima et al.'s EVB threshold constant


def _tau(x, alpha: float):
  """The EVB shrinkage tau(x) for x above the threshold (the larger root)."""
  shifted = x - (1.0 + alpha)
  return 0.5 * (shifted + np.sqrt(np.maximum(shifted**2 - 4.0 * alpha, 0.0)))


def _free_energy(sigma2: float, values, rows: int, cols: int, xi: float, residual: float) -> float:
  """2x the negative free energy (up to constants) of the EVB solution at noise sigma2,
  over the H = len(values) nonzero singular values (`residual`: the energy beyond them)."""
  alpha = rows / cols
  x = values**2 / (cols * sigma2)
  below, above = x[x <= xi], x[x > xi]
  tau = _tau(above, alpha)
  return float(
    np.sum(below - np.log(below))
    + np.sum(above - tau + np.log((tau + 1.0) / above) + alpha * np.log(tau / alpha + 1.0))
    + residual / (cols * sigma2)
    + (rows - len(values)) * np.log(sigma2)
  )


def vbmf_rank(matrix) -> int:
  """The rank EVBMF keeps for `matrix` (2-D): components above the noise it estimates.

  Returns at least 1 (an all-noise matrix still gets one component, so a layer stays
  a layer); at most min(matrix.shape).
  """
  y = checks.require_finite(np.asarray(matrix, np.float64), "vbmf_rank: matrix")
  if y.ndim != 2:
    raise ValueError(f"vbmf_rank needs a 2-D matrix, got shape {y.shape}.")
  if y.shape[0] > y.shape[1]:
    y = y.T
  rows, cols = y.shape
  values = np.linalg.svd(y, compute_uv=False)
  if rows < 2 or not np.any(values > 0):
    return 1
  # Exactly zero singular values (a rank-deficient weight) carry no noise to estimate from:
  # they enter as the H < L case, through the residual and (L - H) log sigma2.
  values = values[values > values[0] * 1e-12]
  residual = max(0.0, float(np.sum(y**2) - np.sum(values**2)))
  count = len(values)
  alpha = rows / cols
  tau_bar = TAU_FACTOR * math.sqrt(alpha)
  xi = (1.0 + tau_bar) * (1.0 + alpha / tau_bar)
  # The noise variance lies between what the smaller singular values alone imply and the
  # whole matrix's mean square (Nakajima et al.'s bounds).
  cut = max(0, min(math.ceil(rows / (1.0 + alpha)) - 1, count) - 1)
  tail = values[cut + 1 :] if cut + 1 < count else values[-1:]
  lower = max(tail[0] ** 2 / (cols * xi), float(np.mean(tail**2)) / cols)
  upper = (float(np.sum(values**2)) + residual) / (rows * cols)
  if not lower < upper:
    lower = upper * 1e-6
  # Imported here: scipy.optimize takes 0.7 s to import, and every program imports tensor/.
  from scipy import optimize  # pylint: disable=g-import-not-at-top

  sigma2 = optimize.minimize_scalar(
    _free_energy, bounds=(lower, upper), args=(values, rows, cols, xi, residual), method="bounded"
  ).x
  threshold = math.sqrt(cols * sigma2 * xi)
  return int(min(count, max(1, np.sum(values > threshold))))


def tucker2_vbmf_ranks(kernel) -> tuple[int, int]:
  """(input-channel rank, output-channel rank) of an HWIO kernel: EVBMF on its mode-I and
  mode-O unfoldings, as Kim et al. (2016) choose Tucker-2 ranks."""
  k = np.asarray(kernel, np.float64)
  if k.ndim < 3:
    raise ValueError(f"tucker2_vbmf_ranks needs a (..., in, out) kernel, got shape {k.shape}.")
  channels_in, channels_out = k.shape[-2], k.shape[-1]
  by_input = np.moveaxis(k, -2, 0).reshape(channels_in, -1)
  by_output = np.moveaxis(k, -1, 0).reshape(channels_out, -1)
  return vbmf_rank(by_input), vbmf_rank(by_output)
