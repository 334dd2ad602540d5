"""Sizes for a compressed layer from its trained weight: a target error, a compression
ratio, or a share of a whole-model budget.

Every format has one size knob (TT ranks, CP / low-rank rank, Tucker-2 ranks, sketch
size, ADTN depth). A `ratio` picks the largest knob whose stored weights are at most
dense / ratio (counted on an abstract layer, so any format and family works). An
`error` picks the smallest knob whose fit reaches that relative error (TT-SVD takes it
directly as its truncation bound; the others are searched, fitting each candidate).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings

import jax
import numpy as np
from flax import nnx

from tnjax import errors
from tnjax.compression.plan import PLAN_FIELDS
from tnjax.nn import registry, spec_from_config
from tnjax.nn.conv_base import FactorizedConv
from tnjax.tensor import tt as tt_lib

# kind -> (the knob's spec fields, the largest useful knob for a weight shape)
KNOBS = {
  "tt": (("ranks",), None),
  "lowrank": (("rank",), lambda shape: min(shape[0], shape[1])),
  "cp": (("rank",), lambda shape: max(1, math.prod(shape) // sum(shape))),
  "tucker": (("in_rank", "out_rank"), lambda shape: min(shape[-2], shape[-1])),
  "sketch": (("sketch_size",), lambda shape: max(shape[-2], shape[-1])),
  "adtn": (("layers",), lambda shape: 64),
}


def layer_kwargs(layer) -> dict:
  """The constructor arguments a replacement of `layer` keeps (dtypes, conv geometry)."""
  kwargs = dict(dtype=layer.dtype, param_dtype=layer.param_dtype, precision=layer.precision)
  if isinstance(layer, FactorizedConv):
    kwargs.update(
      strides=layer.strides, padding=layer.padding, kernel_dilation=layer.kernel_dilation
    )
  return kwargs


def _with_knob(spec: dict, value: int) -> dict:
  fields, _ = KNOBS[spec["kind"]]
  return {**spec, **{field: int(value) for field in fields}}


def _weight_params(entry, spec: dict, shape) -> int:
  cls = registry.layer_class(entry.family, spec["kind"])
  weight = jax.ShapeDtypeStruct(tuple(shape), np.float32)
  abstract = nnx.eval_shape(
    lambda: cls._for_weight(
      weight, spec_from_config(spec), rngs=nnx.Rngs(0), **layer_kwargs(entry.layer)
    )
  )
  return abstract.weight_params


def _tt_limits(entry, spec: dict, shape) -> tuple[int, ...]:
  """The largest useful TT-rank of each bond for this layer's modes."""
  probe = registry.layer_class(entry.family, "tt")
  weight = jax.ShapeDtypeStruct(tuple(shape), np.float32)
  layer = nnx.eval_shape(
    lambda: probe._for_weight(
      weight, spec_from_config({**spec, "ranks": 1}), rngs=nnx.Rngs(0), **layer_kwargs(entry.layer)
    )
  )
  return tuple(int(r) for r in tt_lib.max_tt_ranks(layer.in_shape, layer.out_shape)) or (1,)


def _highest(entry, spec: dict, shape) -> int:
  if spec["kind"] == "tt":
    return max(_tt_limits(entry, spec, shape))
  return KNOBS[spec["kind"]][1](tuple(shape))


def _search(low: int, high: int, good) -> int:
  """The smallest value in [low, high] for which good(value) holds (good is monotone);
  high if none."""
  while low < high:
    middle = (low + high) // 2
    if good(middle):
      high = middle
    else:
      low = middle + 1
  return low


class _Progress:
  """Prints what a slow search tries, once it has run `after` seconds (fast ones stay quiet)."""

  def __init__(self, label: str, *, after: float = 3.0, quiet: bool = False):
    self.label, self.after, self.quiet = label, after, quiet
    self.start = time.perf_counter()

  def step(self, text: str) -> None:
    elapsed = time.perf_counter() - self.start
    if not self.quiet and elapsed >= self.after:
      print(f"  {self.label}: {text} [{elapsed:.0f} s]", flush=True)


@contextlib.contextmanager
def _warnings_summarised(label: str):
  """A search fits many candidates that may each warn alike: one line for them all."""
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    yield
  messages = list(dict.fromkeys(str(w.message) for w in caught))
  if messages:
    more = f" (and {len(messages) - 1} other warnings)" if len(messages) > 1 else ""
    warnings.warn(f"{label}: {len(caught)} candidate fit(s) warned: {messages[0]}{more}")


def _largest_compressing(entry, spec: dict, shape) -> int:
  """The largest knob whose stored weights are below the dense weight's (0: none is)."""
  dense = entry.layer.dense_weight_params
  high = _highest(entry, spec, shape)
  return (
    _search(1, high + 1, lambda k: _weight_params(entry, _with_knob(spec, k), shape) >= dense) - 1
  )


def _no_compressing_size(entry, spec: dict) -> errors.UserError:
  return errors.UserError(
    f"{entry.name}: no {spec['kind']} size stores fewer weights than the dense "
    f"{entry.layer.dense_weight_params:,} of this layer; choose another format, or set "
    "allow_growth: True in its plan entry."
  )


def check_shrinks(entry, spec: dict, shape, allow_growth: bool) -> None:
  """Refuses a layer whose planned size is not smaller than its dense weight (one line:
  the layer, both sizes, a ratio that would compress)."""
  if allow_growth:
    return
  after, before = _weight_params(entry, spec, shape), entry.layer.dense_weight_params
  if after >= before:
    knob = ", ".join(f"{f}={spec.get(f)}" for f in KNOBS[spec["kind"]][0])
    raise errors.UserError(
      f"{entry.name}: {spec['kind']} at {knob} stores {after:,} weights, not fewer than the "
      f"dense layer's {before:,} ({before / after:.2f}x); give smaller sizes or e.g. "
      "`ratio: 4` (4x fewer weights), or set allow_growth: True in its plan entry."
    )


def size_for_ratio(entry, spec: dict, weight_shape, ratio: float) -> dict:
  """The spec with the largest knob storing at most dense / ratio weights."""
  if not ratio > 1.0:
    raise errors.UserError(f"{entry.name}: ratio={ratio} must be above 1 (dense / stored weights).")
  budget = entry.layer.dense_weight_params / ratio
  high = _highest(entry, spec, weight_shape)
  over = _search(
    1, high + 1, lambda k: _weight_params(entry, _with_knob(spec, k), weight_shape) > budget
  )
  if over == 1:
    smallest = _weight_params(entry, _with_knob(spec, 1), weight_shape)
    raise errors.UserError(
      f"{entry.name}: ratio={ratio:g} cannot be met by {spec['kind']}: its smallest size "
      f"stores {smallest:,} weights against the dense {entry.layer.dense_weight_params:,} "
      f"(at most {entry.layer.dense_weight_params / smallest:.1f}x); lower the ratio."
    )
  return _with_knob(spec, over - 1)


def size_for_error(
  entry, spec: dict, weight, error: float, *, allow_growth=False, clamp=False, quiet=False
) -> dict:
  """The spec with the smallest knob whose fit of `weight` is within relative `error`,
  among the sizes that compress (all sizes with `allow_growth`). A target no such size
  meets is a UserError, or (`clamp`, for budgets) the largest of them."""
  if not 0.0 <= error < 1.0:
    raise errors.UserError(f"{entry.name}: error={error} must be in [0, 1) (relative Frobenius).")
  kind = spec["kind"]
  if kind == "adtn":
    raise errors.UserError(
      f"{entry.name}: ADTN fits are trained, so `error` cannot size them; give layers=M "
      "or a `ratio`."
    )
  cls = registry.layer_class(entry.family, kind)
  kwargs = layer_kwargs(entry.layer)
  if kind == "tt":  # TT-SVD truncates to the error itself; the ranks it kept are the size
    limits = _tt_limits(entry, spec, weight.shape)
    fitted = cls.from_dense(
      weight, None, spec_from_config({**spec, "ranks": limits}), eps=error, **kwargs
    )
    sized = (
      {**spec, "ranks": tuple(int(r) for r in fitted.spec.ranks)}
      if isinstance(fitted.spec.ranks, tuple)
      else {**spec, "ranks": int(fitted.spec.ranks)}
    )
    if clamp and _weight_params(entry, sized, weight.shape) >= entry.layer.dense_weight_params:
      return _with_knob(spec, max(1, _largest_compressing(entry, spec, weight.shape)))
    if not allow_growth and fitted.weight_params >= entry.layer.dense_weight_params:
      raise errors.UserError(
        f"{entry.name}: error={error:g} needs TT-ranks {sized['ranks']}, which store "
        f"{fitted.weight_params:,} weights, not fewer than the dense "
        f"{entry.layer.dense_weight_params:,}; raise `error`, give `ratio`, or set "
        "allow_growth: True."
      )
    return sized
  progress = _Progress(f"{entry.name} ({kind}, error {error:g})", quiet=quiet)
  knob = KNOBS[kind][0][0]
  errors_seen = {}

  def fit_error(value):
    if value not in errors_seen:
      candidate = _with_knob(spec, value)
      errors_seen[value] = float(
        cls.from_dense(weight, None, spec_from_config(candidate), **kwargs).fit_error
      )
      progress.step(f"{knob}={value}: error {errors_seen[value]:.4f}")
    return errors_seen[value]

  high = (
    _highest(entry, spec, weight.shape)
    if allow_growth
    else _largest_compressing(entry, spec, weight.shape)
  )
  if high < 1:
    if clamp:
      return _with_knob(spec, 1)
    raise _no_compressing_size(entry, spec)
  with _warnings_summarised(f"{entry.name} ({kind} size search)"):
    if fit_error(high) > error:
      if clamp:
        return _with_knob(spec, high)
      raise errors.UserError(
        f"{entry.name}: error={error:g} cannot be met by {kind} with fewer weights than "
        f"dense: at {knob}={high}, the largest size that compresses, the error is "
        f"{errors_seen[high]:.4f}; raise `error`, choose another format, or set "
        "allow_growth: True."
      )
    return _with_knob(spec, _search(1, high, lambda v: fit_error(v) <= error))


def check_useful(entry, spec: dict, shape) -> None:
  """Refuses given sizes above what can help: such factors only add weights (a low-rank rank
  above min(in, out), Tucker-2 ranks above the channels, TT ranks above a bond's maximum)."""
  kind, shape = spec["kind"], tuple(shape)
  limits = {}
  if kind == "lowrank" and "rank" in spec:
    limits["rank"] = (spec["rank"], min(shape[0], shape[1]))
  if kind == "tucker":
    limits["in_rank"] = (spec.get("in_rank", 0), shape[-2])
    limits["out_rank"] = (spec.get("out_rank", 0), shape[-1])
  if kind == "cp" and "rank" in spec:
    limits["rank"] = (spec["rank"], KNOBS["cp"][1](shape))
  if kind == "sketch" and "sketch_size" in spec:
    limits["sketch_size"] = (spec["sketch_size"], KNOBS["sketch"][1](shape))
  if kind == "adtn" and "layers" in spec:
    limits["layers"] = (spec["layers"], KNOBS["adtn"][1](shape))
  if kind == "tt" and "ranks" in spec:
    ranks = spec["ranks"] if isinstance(spec["ranks"], (tuple, list)) else (spec["ranks"],)
    limits["ranks"] = (max(ranks), max(_tt_limits(entry, spec, shape)))
  for field, (value, most) in limits.items():
    if value > most:
      raise errors.UserError(
        f"{entry.name}: {kind} {field}={value} is above what is useful for this layer (at "
        f"most {most}: more only adds weights); lower it, or give `error` / `ratio` instead."
      )


def size_spec(entry, weight) -> dict:
  """`entry.spec` with `error` / `ratio` replaced by the sizes they call for; a size that
  would not compress the layer is refused unless the entry says allow_growth."""
  spec = dict(entry.spec)
  allow_growth = bool(spec.pop("allow_growth", False))
  if "ratio" in spec:
    return size_for_ratio(entry, spec, weight.shape, float(spec.pop("ratio")))
  if "error" in spec:
    return size_for_error(entry, spec, weight, float(spec.pop("error")), allow_growth=allow_growth)
  if not allow_growth:
    check_useful(entry, spec, weight.shape)
  check_shrinks(entry, spec, weight.shape, allow_growth)
  return spec


def allocate_budget(entries, weights: dict, budget) -> dict[str, dict]:
  """Sizes for the planned layers so that their weights together stay within `budget`.

  `budget` is {'params': N} (stored weights of the planned layers, biases aside) or
  {'ratio': R} (their dense weights / R). The rule: one relative error for every layer
  (the 'equal relative error' allocation), the smallest the budget allows, found by
  bisection; each layer then takes the smallest size that reaches it. Layers must not
  give their own sizes, only their format.
  """
  check_budget(budget)
  with _warnings_summarised(f"budget {budget}"):
    return _allocate(entries, weights, budget)


def check_budget(budget) -> None:
  """A budget is {'params': N >= 1} or {'ratio': R > 1}: anything else is one line."""
  usage = "a budget is {'params': N} (N >= 1 weights) or {'ratio': R} (R > 1)"
  if not isinstance(budget, dict) or len(budget) != 1 or not {"params", "ratio"} & set(budget):
    raise errors.UserError(f"{usage}; got {budget!r}.")
  ((key, value),) = budget.items()
  number = isinstance(value, (int, float)) and not isinstance(value, bool)
  if key == "params" and not (number and value >= 1 and float(value).is_integer()):
    raise errors.UserError(f"{usage}; params={value!r} is not a whole number >= 1.")
  if key == "ratio" and not (number and value > 1):
    raise errors.UserError(f"{usage}; ratio={value!r} is not a number above 1.")


def _allocate(entries, weights: dict, budget) -> dict[str, dict]:
  dense = sum(e.layer.dense_weight_params for e in entries)
  allowed = int(budget["params"]) if "params" in budget else dense / float(budget["ratio"])

  plain = {e.name: {k: v for k, v in e.spec.items() if k not in PLAN_FIELDS} for e in entries}
  progress = _Progress(f"budget {budget}")

  def sizes_at(error):
    sizes = {
      e.name: size_for_error(e, plain[e.name], weights[e.name], error, clamp=True, quiet=True)
      for e in entries
    }
    progress.step(f"relative error {error:.4f}: {total(sizes):,} weights (allowed {allowed:,.0f})")
    return sizes

  def total(sizes):
    return sum(_weight_params(e, sizes[e.name], weights[e.name].shape) for e in entries)

  low, high = 0.0, 0.999
  if total(sizes_at(high)) > allowed:
    raise errors.UserError(
      f"no sizes of these formats fit {allowed:,.0f} weights (the smallest take "
      f"{total(sizes_at(high)):,}); raise the budget."
    )
  for _ in range(12):  # 2^-12 of the error range
    middle = (low + high) / 2
    if total(sizes_at(middle)) <= allowed:
      high = middle
    else:
      low = middle
  return sizes_at(high)
