"""An `error` target for formats fitted by truncation (TT-SVD's `eps`: tt, TT convs and
tt_embedding): the fewest weights whose fit stays within the error.

TT-SVD's bound gives every bond the same share of the error, so one fit at `eps` keeps
ranks well above what the target needs (up to twice the weights). Its exact error is
exact and cheap to read from the SVDs (tensor/tt_truncation.py), so the bound's ranks are
only one start of a greedy descent that lowers one bond at a time while the error stays
within the target; the smallest uniform rank within it is the other, and the fewer weights
of the two descents win. The result is never larger than the bound's or the uniform rank's.
"""

from __future__ import annotations

import warnings

import numpy as np

from tnjax import errors
from tnjax.compression import progress as progress_lib
from tnjax.compression import size_knobs as knobs
from tnjax.tensor import tt, tt_truncation


def size_by_truncation(entry, spec: dict, weight, error: float, *, allow_growth) -> dict:
  """The spec, ranks set, with the fewest weights found whose fit is within `error`."""
  (field,) = knobs.size_fields(entry, spec)
  with warnings.catch_warnings():  # the cap is clipped to each bond's maximum: intended
    warnings.simplefilter("ignore")
    highest = knobs.with_knob(entry, spec, knobs.highest(entry, spec, weight.shape), weight.shape)
    layer = knobs.abstract_layer(entry, highest, weight.shape)  # shapes only: no fit, no JAX
  matrix, in_shape, out_shape = layer.tt_problem(np.asarray(weight, np.float64))
  errors_of = tt_truncation.TTSVDErrors(matrix, in_shape, out_shape)
  start = errors_of.bound_ranks(error, tt.max_tt_ranks(in_shape, out_shape))
  start_error = errors_of.error(start)
  if start_error > error * (1 + 1e-3) + 1e-6:  # truncated at the cap, not the error
    raise errors.UserError(
      f"{entry.name}: error={error:g} cannot be met by {spec['kind']}: at its largest useful "
      f"TT-ranks the error is {start_error:.4f}; raise `error` or choose another format."
    )
  # Quiet for 15 s: most descents take a few (a refused one must stay one line).
  progress = progress_lib.Progress(f"{entry.name} ({spec['kind']}, error {error:g})", after=15.0)
  target = max(error, start_error)  # the bound's own rounding
  limits = tt.max_tt_ranks(in_shape, out_shape)
  # The descent stops where no single bond can go lower, which can be far from the fewest
  # weights: it also starts from the smallest uniform rank within the target (784x256 at
  # error 0.9: 41,268 weights from the bound's ranks, 27,392 at uniform rank 30).
  uniform = _smallest_uniform_ranks(errors_of, limits, target)
  found = [
    tt_truncation.tt_fewest_weights_within(
      errors_of,
      begin,
      target,
      on_step=lambda ranks, err: progress.step(f"{field}={ranks}: error {err:.4f}"),
    )
    for begin in ([start] if uniform is None else [start, uniform])
  ]
  count = lambda rs: tt.tt_num_params(in_shape, out_shape, rs, clip=False)  # noqa: E731
  ranks = min(found, key=count)
  sized = {**spec, field: tuple(ranks)}
  weights = knobs.stored_weights(entry, sized, weight.shape)
  if not allow_growth and weights >= entry.layer.dense_weight_params:
    raise errors.UserError(
      f"{entry.name}: error={error:g} needs TT-ranks {sized[field]}, which store "
      f"{weights:,} weights, not fewer than the dense "
      f"{entry.layer.dense_weight_params:,}; raise `error`, give `ratio`, or set "
      "allow_growth: True."
    )
  return knobs.settled(entry, sized, weight.shape)


def _smallest_uniform_ranks(errors_of, limits, error: float):
  """The TT-ranks min(r, each bond's limit) at the smallest r whose error is within
  `error` (the error falls as r grows); None if even the limits miss it."""
  at = lambda r: tuple(min(r, int(limit)) for limit in limits)  # noqa: E731
  low, high = 1, int(max(limits))
  if errors_of.error(at(high)) > error:
    return None
  while low < high:
    middle = (low + high) // 2
    low, high = (low, middle) if errors_of.error(at(middle)) <= error else (middle + 1, high)
  return at(low)
