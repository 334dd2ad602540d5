"""Sizes for a compressed layer from its trained weight: a target error, a compression
ratio or EVBMF's ranks (a whole-model budget: budget.py).

Every format has one size knob (TT ranks, CP / low-rank rank, Tucker-2 ranks, sketch
size, ADTN depth). A `ratio` picks the largest knob whose stored weights are at most
dense / ratio (counted on an abstract layer, so any format and family works). An
`error` picks the smallest knob whose fit reaches that relative error (TT formats: the
fewest weights, per bond, truncation_sizing.py; the others are searched, fitting each
candidate).
"""

from __future__ import annotations

import math

import numpy as np

from tnjax import errors
from tnjax.compression import progress as progress_lib
from tnjax.compression import size_knobs as knobs
from tnjax.compression import truncation_sizing
from tnjax.nn import registry, spec_from_config

# The relative error of a float32 fit that is exact but for round-off (a full-rank SVD: ~1e-7).
EXACT_FIT_ERROR = 1e-6


def _largest_compressing(entry, spec: dict, shape) -> int:
  """The largest knob whose stored weights are below the dense weight's (0: none is)."""
  return knobs.largest_storing(entry, spec, shape, entry.layer.dense_weight_params - 1)


def _no_compressing_size(entry, spec: dict) -> errors.UserError:
  return errors.UserError(
    f"{entry.name}: no {spec['kind']} size stores fewer weights than the dense "
    f"{entry.layer.dense_weight_params:,} of this layer; choose another format, or set "
    "allow_growth: True in its plan entry."
  )


def _knob_text(entry, spec: dict) -> str:
  """'ranks=8', or 'its default size' when the spec leaves the sizes out."""
  fields = knobs.spec_class(entry, spec).size_fields
  given = [f"{f}={spec[f]}" for f in fields if spec.get(f) is not None]
  return ", ".join(given) or "its default size"


def check_shrinks(entry, spec: dict, shape, allow_growth: bool) -> None:
  """Refuses a layer whose planned size is not smaller than its dense weight (one line:
  the layer, both sizes, a ratio that would compress)."""
  if allow_growth:
    return
  after, before = knobs.stored_weights(entry, spec, shape), entry.layer.dense_weight_params
  if after >= before and not knobs.spec_class(entry, spec).size_fields:
    raise errors.UserError(
      f"{entry.name}: {spec['kind']} has no size to choose and stores {after:,} weights, "
      f"not fewer than the dense layer's {before:,}; plan a compressing format, or set "
      "allow_growth: True in its plan entry."
    )
  if after >= before:
    knob = _knob_text(entry, spec)
    raise errors.UserError(
      f"{entry.name}: {spec['kind']} at {knob} stores {after:,} weights, not fewer than the "
      f"dense layer's {before:,} ({before / after:.2f}x); give smaller sizes or e.g. "
      "`ratio: 4` (4x fewer weights), or set allow_growth: True in its plan entry."
    )


def size_for_ratio(entry, spec: dict, weight_shape, ratio: float) -> dict:
  """The spec with the largest knob storing at most dense / ratio weights."""
  if not ratio > 1.0:
    raise errors.UserError(f"{entry.name}: ratio={ratio} must be above 1 (dense / stored weights).")
  largest = knobs.largest_storing(
    entry, spec, weight_shape, entry.layer.dense_weight_params / ratio
  )
  if largest == 0:
    smallest = knobs.stored_weights(
      entry, knobs.with_knob(entry, spec, 1, weight_shape), weight_shape
    )
    raise errors.UserError(
      f"{entry.name}: ratio={ratio:g} cannot be met by {spec['kind']}: its smallest size "
      f"stores {smallest:,} weights against the dense {entry.layer.dense_weight_params:,} "
      f"(at most {entry.layer.dense_weight_params / smallest:.1f}x); lower the ratio."
    )
  return knobs.settled(entry, knobs.with_knob(entry, spec, largest, weight_shape), weight_shape)


def size_for_error(
  entry,
  spec: dict,
  weight,
  error: float,
  *,
  allow_growth=False,
  clamp=False,
  largest: int | None = None,
  quiet=False,
  fitted_errors: dict | None = None,
) -> dict | None:
  """The spec with the smallest knob whose fit of `weight` is within relative `error`,
  among the sizes that compress (all sizes with `allow_growth`). A target no such size
  meets is a UserError, or with `clamp` (a budget's bisection) the largest size; `largest`
  (the layer's share of the budget) bounds the search, and missing the error within it
  gives None (no allocation reaches that error).
  `fitted_errors` keeps each knob's fit error across calls (the bisection asks again)."""
  if not 0.0 <= error < 1.0:
    raise errors.UserError(f"{entry.name}: error={error} must be in [0, 1) (relative Frobenius).")
  kind = spec["kind"]
  if not knobs.spec_class(entry, spec).error_sizable:
    raise errors.UserError(
      f"{entry.name}: {kind} weights are trained, not fitted, so `error` cannot size them; "
      f"give its size ({', '.join(knobs.size_fields(entry, spec))}) or a `ratio`."
    )
  cls = registry.layer_class(entry.family, kind)
  kwargs = knobs.layer_kwargs(entry.layer)
  # A fit that truncates to the error itself (TT-SVD's eps) starts from its bound's ranks
  # and lowers them bond by bond. A budget (clamp) searches the knob instead: its bisection needs
  # sizes that shrink steadily as the error grows, down to the smallest at error ~1.
  if "eps" in cls.fit_options and not clamp:
    return truncation_sizing.size_by_truncation(
      entry, spec, weight, error, allow_growth=allow_growth
    )
  progress = progress_lib.Progress(f"{entry.name} ({kind}, error {error:g})", quiet=quiet)
  knob = knobs.size_fields(entry, spec)[0]
  errors_seen = {} if fitted_errors is None else fitted_errors
  # A closed form (a truncated SVD's tail) needs no fit at all; it is exact for factors
  # held in float32 or wider, while rounding to bfloat16 adds error of its own: fit those.
  if not errors_seen and np.dtype(kwargs.get("param_dtype") or np.float32).itemsize >= 4:
    errors_seen.update(spec_from_config(spec).fit_errors(weight) or {})

  def fit_error(value):
    if value not in errors_seen:
      # settled: a uniform TT-rank clipped at the edge bonds, so the fit has nothing to warn
      candidate = knobs.settled(
        entry, knobs.with_knob(entry, spec, value, weight.shape), weight.shape
      )
      errors_seen[value] = float(
        cls.from_dense(weight, None, spec_from_config(candidate), **kwargs).fit_error
      )
      progress.step(f"{knob}={value}: error {errors_seen[value]:.4f}")
    return errors_seen[value]

  high = (
    knobs.highest(entry, spec, weight.shape)
    if allow_growth
    else _largest_compressing(entry, spec, weight.shape)
  )
  # A budget's share bounds the search; a layer that misses the error within its own sizes
  # (not the share) stays at its largest, and the other layers go on lowering theirs.
  capped = clamp and largest is not None and largest < high
  high = largest if capped else high
  if high < 1:
    if clamp:
      return knobs.settled(entry, knobs.with_knob(entry, spec, 1, weight.shape), weight.shape)
    raise _no_compressing_size(entry, spec)
  with progress_lib.warnings_summarised(f"{entry.name} ({kind} size search)"):
    # Small sizes first, and the largest only if no smaller one meets the error: the fits
    # grow dearer with the size (CP-ALS at LeNet fc1's largest compressing rank: minutes).
    # (float32 fits leave ~1e-7 of round-off: an exact target, error 0, is met below it)
    target = max(error, EXACT_FIT_ERROR)
    chosen = knobs.smallest_true_from_below(1, high, lambda v: fit_error(v) <= target)
    if chosen == high and fit_error(high) > target:
      if capped:
        return None
      if clamp:
        return knobs.settled(entry, knobs.with_knob(entry, spec, high, weight.shape), weight.shape)
      best = errors_seen[high]
      reachable = math.ceil(best * 1e4) / 1e4  # rounded up: the value shown must be enough
      raise errors.UserError(
        f"{entry.name}: error={error:g} cannot be met by {kind}: at "
        f"{_knob_text(entry, knobs.with_knob(entry, spec, high, weight.shape))}, the "
        + ("largest useful size" if allow_growth else "largest size that compresses")
        + f", the error is {best:.4f}; "
        # An error of 1 is what storing nothing gives: no target below it is reachable.
        + (f"raise `error` to at least {reachable:.4f}, " if reachable < 1.0 else "")
        + "choose another format"
        + ("." if allow_growth else ", or set allow_growth: True.")
      )
    return knobs.settled(entry, knobs.with_knob(entry, spec, chosen, weight.shape), weight.shape)


def _at_vbmf_ranks(spec: dict, weight) -> dict | None:
  """`spec` with the ranks EVBMF estimates from `weight`; None for formats without them."""
  sizes = spec_from_config(spec).vbmf_sizes(weight)
  return None if sizes is None else {**spec, **sizes}


def size_by_vbmf(entry, spec: dict, weight, *, allow_growth=False) -> dict:
  """The spec with the ranks EVBMF estimates from the trained weight (Kim et al. 2016's
  choice for Tucker-2), refused if it would not compress unless allow_growth."""
  sized = _at_vbmf_ranks(spec, weight)
  if sized is None:
    raise errors.UserError(
      f"{entry.name}: `vbmf` sizes formats whose sizes are matrix ranks (lowrank, tucker), "
      f"not {spec['kind']}; give its size, `error` or `ratio`."
    )
  check_shrinks(entry, sized, weight.shape, allow_growth)
  return sized


def vbmf_rung(entry, spec: dict, weight) -> tuple[dict, int] | None:
  """(spec at the EVBMF ranks, its weights) when the format has them and they compress the
  layer: the rank search's starting size for lowrank and tucker layers; else None."""
  sized = _at_vbmf_ranks(spec, weight)
  if sized is None:
    return None
  weights = knobs.stored_weights(entry, sized, weight.shape)
  return (sized, weights) if weights < entry.layer.dense_weight_params else None


def check_useful(entry, spec: dict, shape) -> None:
  """Refuses given sizes above what can help: such factors only add weights (a low-rank rank
  above min(in, out), Tucker-2 ranks above the channels, TT ranks above a bond's maximum,
  a CP rank at which CP stores more than dense, ...; each spec class states its limits)."""
  fields = knobs.spec_class(entry, spec).size_fields
  given = {f: spec[f] for f in fields if f in spec}
  if not given:
    return
  spec_object, probe = knobs.probe(entry, spec, shape)
  limits = spec_object.size_limits(probe)
  for field, value in given.items():
    largest = max(value) if isinstance(value, (tuple, list)) else value
    if largest > limits[field]:
      raise errors.UserError(
        f"{entry.name}: {spec['kind']} {field}={value} is above what is useful for this layer "
        f"(at most {limits[field]}: more only adds weights); lower it, or give `error` / "
        "`ratio` instead."
      )


def size_spec(entry, weight) -> dict:
  """`entry.spec` with `error` / `ratio` replaced by the sizes they call for; a size that
  would not compress the layer, or would store more than an already-compressed layer
  stores now, is refused unless the entry says allow_growth."""
  spec = dict(entry.spec)
  allow_growth = bool(spec.pop("allow_growth", False))
  if "ratio" in spec:
    target = f"ratio={spec['ratio']:g}"
    sized = size_for_ratio(entry, spec, weight.shape, float(spec.pop("ratio")))
  elif "error" in spec:
    target = f"error={spec['error']:g}"
    error = float(spec.pop("error"))
    sized = size_for_error(entry, spec, weight, error, allow_growth=allow_growth)
  elif spec.pop("vbmf", False):
    target = "its EVBMF ranks"
    sized = size_by_vbmf(entry, spec, weight, allow_growth=allow_growth)
  else:
    if not allow_growth:
      check_useful(entry, spec, weight.shape)
      check_shrinks(entry, spec, weight.shape, allow_growth)
      _check_not_larger_than_now(entry, spec, weight.shape, _knob_text(entry, spec))
    return spec
  if not allow_growth:
    _check_not_larger_than_now(entry, sized, weight.shape, target)
  return sized


def _check_not_larger_than_now(entry, spec: dict, shape, target: str) -> None:
  """A layer that is already compressed (stores fewer weights than dense) may not come out
  larger: `ratio` and `error` are measured against the dense weight, so a plan written for
  dense layers would otherwise grow a compressed model without a word."""
  now, dense = entry.layer.weight_params, entry.layer.dense_weight_params
  after = knobs.stored_weights(entry, spec, shape)
  if now < dense and after > now:
    raise errors.UserError(
      f"{entry.name}: {spec['kind']} at {target} stores {after:,} weights, more than the "
      f"{now:,} this layer stores now (it is already compressed: {dense / now:.1f}x fewer "
      f"than dense); the plan would grow the model. Give smaller sizes or a `ratio` above "
      f"{dense / now:.1f} (dense / stored weights), or set allow_growth: True in its plan entry."
    )
