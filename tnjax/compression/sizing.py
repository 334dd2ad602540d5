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
import sys
import time
import warnings

import jax
import numpy as np
from flax import nnx

from tnjax import errors
from tnjax.compression.plan import PLAN_FIELDS, SIZE_TARGETS
from tnjax.nn import registry, spec_from_config
from tnjax.nn.conv_base import FactorizedConv


def layer_kwargs(layer) -> dict:
  """The constructor arguments a replacement of `layer` keeps (dtypes, conv geometry); a
  user's layer (compression.user_layers.SourceLayer) states its own."""
  if hasattr(layer, "options"):
    return dict(layer.options)
  kwargs = dict(dtype=layer.dtype, param_dtype=layer.param_dtype, precision=layer.precision)
  if isinstance(layer, FactorizedConv):
    kwargs.update(
      strides=layer.strides, padding=layer.padding, kernel_dilation=layer.kernel_dilation
    )
  return kwargs


def _spec_class(entry, spec: dict):
  return registry.layer_class(entry.family, spec["kind"]).spec_type


def _size_fields(entry, spec: dict) -> tuple[str, ...]:
  fields = _spec_class(entry, spec).size_fields
  if not fields:
    raise errors.UserError(
      f"{entry.name}: format {spec['kind']!r} has no size to choose; `error`, `ratio` and "
      "budgets size the other formats."
    )
  return fields


def _with_knob(entry, spec: dict, value: int) -> dict:
  return {**spec, **{field: int(value) for field in _size_fields(entry, spec)}}


def _abstract_layer(entry, spec: dict, shape):
  cls = registry.layer_class(entry.family, spec["kind"])
  weight = jax.ShapeDtypeStruct(tuple(shape), np.float32)
  with warnings.catch_warnings():  # a candidate's clipped ranks: not the chosen size's
    warnings.simplefilter("ignore")
    return nnx.eval_shape(
      lambda: cls._for_weight(
        weight, spec_from_config(spec), rngs=nnx.Rngs(0), **layer_kwargs(entry.layer)
      )
    )


def _settled(entry, spec: dict, shape) -> dict:
  """The chosen spec with its sizes as the layer stores them (a uniform TT-rank clipped at
  the edge bonds becomes per-bond ranks): the report names what is stored, and the final
  fit has nothing to warn about."""
  stored = spec_from_config(spec).stored_sizes(_abstract_layer(entry, spec, shape))
  return {**spec, **stored}


def stored_weights(entry, spec: dict, shape) -> int:
  """The weights the planned layer stores at `spec`."""
  return _abstract_layer(entry, spec, shape).weight_params


def _probe(entry, spec: dict, shape):
  """(spec object, abstract layer) at the smallest size: what the size limits read."""
  smallest = _with_knob(entry, spec, 1)
  return spec_from_config(smallest), _abstract_layer(entry, smallest, shape)


def _highest(entry, spec: dict, shape) -> int:
  spec_object, probe = _probe(entry, spec, shape)
  return int(spec_object.largest_useful_size(probe))


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
      print(f"  {self.label}: {text} [{elapsed:.0f} s]", file=sys.stderr, flush=True)


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
    _search(
      1, high + 1, lambda k: stored_weights(entry, _with_knob(entry, spec, k), shape) >= dense
    )
    - 1
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
  after, before = stored_weights(entry, spec, shape), entry.layer.dense_weight_params
  if after >= before:
    knob = ", ".join(f"{f}={spec.get(f)}" for f in _spec_class(entry, spec).size_fields)
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
    1, high + 1, lambda k: stored_weights(entry, _with_knob(entry, spec, k), weight_shape) > budget
  )
  if over == 1:
    smallest = stored_weights(entry, _with_knob(entry, spec, 1), weight_shape)
    raise errors.UserError(
      f"{entry.name}: ratio={ratio:g} cannot be met by {spec['kind']}: its smallest size "
      f"stores {smallest:,} weights against the dense {entry.layer.dense_weight_params:,} "
      f"(at most {entry.layer.dense_weight_params / smallest:.1f}x); lower the ratio."
    )
  return _settled(entry, _with_knob(entry, spec, over - 1), weight_shape)


def size_for_error(
  entry,
  spec: dict,
  weight,
  error: float,
  *,
  allow_growth=False,
  clamp=False,
  quiet=False,
  fitted_errors: dict | None = None,
) -> dict:
  """The spec with the smallest knob whose fit of `weight` is within relative `error`,
  among the sizes that compress (all sizes with `allow_growth`). A target no such size
  meets is a UserError, or (`clamp`, for budgets) the largest of them. `fitted_errors`
  keeps each knob's fit error across calls (a budget's bisection asks for the same ones)."""
  if not 0.0 <= error < 1.0:
    raise errors.UserError(f"{entry.name}: error={error} must be in [0, 1) (relative Frobenius).")
  kind = spec["kind"]
  if not _spec_class(entry, spec).error_sizable:
    raise errors.UserError(
      f"{entry.name}: {kind} weights are trained, not fitted, so `error` cannot size them; "
      f"give its size ({', '.join(_size_fields(entry, spec))}) or a `ratio`."
    )
  cls = registry.layer_class(entry.family, kind)
  kwargs = layer_kwargs(entry.layer)
  if "eps" in cls.fit_options:  # the fit truncates to the error itself (TT-SVD): its size
    (field,) = _size_fields(entry, spec)
    with warnings.catch_warnings():  # the cap is clipped to each bond's maximum: intended
      warnings.simplefilter("ignore")
      fitted = cls.from_dense(
        weight,
        None,
        spec_from_config(_with_knob(entry, spec, _highest(entry, spec, weight.shape))),
        eps=error,
        **kwargs,
      )
    value = getattr(fitted.spec, field)
    sized = {
      **spec,
      field: tuple(int(r) for r in value) if isinstance(value, tuple) else int(value),
    }
    if clamp and stored_weights(entry, sized, weight.shape) >= entry.layer.dense_weight_params:
      largest = _with_knob(entry, spec, max(1, _largest_compressing(entry, spec, weight.shape)))
      return _settled(entry, largest, weight.shape)
    if not allow_growth and fitted.weight_params >= entry.layer.dense_weight_params:
      raise errors.UserError(
        f"{entry.name}: error={error:g} needs TT-ranks {sized['ranks']}, which store "
        f"{fitted.weight_params:,} weights, not fewer than the dense "
        f"{entry.layer.dense_weight_params:,}; raise `error`, give `ratio`, or set "
        "allow_growth: True."
      )
    return sized
  progress = _Progress(f"{entry.name} ({kind}, error {error:g})", quiet=quiet)
  knob = _size_fields(entry, spec)[0]
  errors_seen = {} if fitted_errors is None else fitted_errors

  def fit_error(value):
    if value not in errors_seen:
      candidate = _with_knob(entry, spec, value)
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
      return _settled(entry, _with_knob(entry, spec, 1), weight.shape)
    raise _no_compressing_size(entry, spec)
  with _warnings_summarised(f"{entry.name} ({kind} size search)"):
    if fit_error(high) > error:
      if clamp:
        return _settled(entry, _with_knob(entry, spec, high), weight.shape)
      raise errors.UserError(
        f"{entry.name}: error={error:g} cannot be met by {kind} with fewer weights than "
        f"dense: at {knob}={high}, the largest size that compresses, the error is "
        f"{errors_seen[high]:.4f}; raise `error`, choose another format, or set "
        "allow_growth: True."
      )
    chosen = _with_knob(entry, spec, _search(1, high, lambda v: fit_error(v) <= error))
    return _settled(entry, chosen, weight.shape)


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
  weights = stored_weights(entry, sized, weight.shape)
  return (sized, weights) if weights < entry.layer.dense_weight_params else None


def check_useful(entry, spec: dict, shape) -> None:
  """Refuses given sizes above what can help: such factors only add weights (a low-rank rank
  above min(in, out), Tucker-2 ranks above the channels, TT ranks above a bond's maximum,
  a CP rank at which CP stores more than dense, ...; each spec class states its limits)."""
  fields = _spec_class(entry, spec).size_fields
  given = {f: spec[f] for f in fields if f in spec}
  if not given:
    return
  spec_object, probe = _probe(entry, spec, shape)
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
  would not compress the layer is refused unless the entry says allow_growth."""
  spec = dict(entry.spec)
  allow_growth = bool(spec.pop("allow_growth", False))
  if "ratio" in spec:
    return size_for_ratio(entry, spec, weight.shape, float(spec.pop("ratio")))
  if "error" in spec:
    return size_for_error(entry, spec, weight, float(spec.pop("error")), allow_growth=allow_growth)
  if spec.pop("vbmf", False):
    return size_by_vbmf(entry, spec, weight, allow_growth=allow_growth)
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
  if needs_search(budget):
    raise errors.UserError(
      f"budget {budget} is met by measuring candidates on validation data: pass "
      "validation=tnjax.compression.Validation(...) to tnjax.compress (see "
      "tnjax.compression.search)."
    )
  check_budget_entries(entries)
  with _warnings_summarised(f"budget {budget}"):
    return _allocate(entries, weights, budget)


BUDGET_USAGE = (
  "a budget is {'params': N} (N >= 1 weights) or {'ratio': R} (R > 1), either with "
  "'allocate': 'equal_error' (the default) or 'sensitivity'; or {'accuracy_drop': D} "
  "(points, optional 'by': 'params' or 'flops'); or {'latency_ms': T, 'batch': B}"
)
_BUDGET_KEYS = {
  "params": ("allocate",),
  "ratio": ("allocate",),
  "accuracy_drop": ("by",),
  "latency_ms": ("batch",),
}


def check_budget_entries(entries) -> None:
  """Under a budget the plan names formats only: a size in an entry (which the budget would
  override) is one line naming it."""
  for entry in entries:
    fields = (*_spec_class(entry, entry.spec).size_fields, *SIZE_TARGETS)
    given = [f for f in fields if f in entry.spec]
    if given:
      sizes = ", ".join(f"{f}={entry.spec[f]}" for f in given)
      raise errors.UserError(
        f"{entry.name}: a budget sizes every planned layer, so its entry takes only a format; "
        f"remove {sizes}, or drop the budget."
      )


def check_budget(budget) -> None:
  """A budget in one of the forms of BUDGET_USAGE; anything else is one line."""
  main = [k for k in _BUDGET_KEYS if isinstance(budget, dict) and k in budget]
  if not isinstance(budget, dict) or len(main) != 1:
    raise errors.UserError(f"{BUDGET_USAGE}; got {budget!r}.")
  (key,) = main
  extra = sorted(set(budget) - {key, *_BUDGET_KEYS[key]})
  if extra:
    raise errors.UserError(f"{BUDGET_USAGE}; remove {extra} from {budget!r}.")
  value = budget[key]
  number = isinstance(value, (int, float)) and not isinstance(value, bool)
  wrong = {
    "params": lambda: not (number and value >= 1 and float(value).is_integer()),
    "ratio": lambda: not (number and value > 1),
    "accuracy_drop": lambda: not (number and value >= 0),
    "latency_ms": lambda: not (number and value > 0),
  }[key]()
  if wrong:
    need = {
      "params": "a whole number >= 1",
      "ratio": "a number above 1",
      "accuracy_drop": "a number of points >= 0",
      "latency_ms": "a number of milliseconds above 0",
    }[key]
    raise errors.UserError(f"{BUDGET_USAGE}; {key}={value!r} is not {need}.")
  choices = {"allocate": ("equal_error", "sensitivity"), "by": ("params", "flops")}
  for field, allowed in choices.items():
    if field in budget and budget[field] not in allowed:
      raise errors.UserError(f"budget {field}={budget[field]!r} must be one of {allowed}.")
  batch = budget.get("batch", 1)
  if key == "latency_ms" and not (
    isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1
  ):
    raise errors.UserError(f"budget batch={batch!r} must be a whole number >= 1.")


def needs_search(budget) -> bool:
  """Whether the budget is met by measuring models on validation data (compression.search)
  rather than from the weights alone."""
  return (
    budget.get("allocate") == "sensitivity" or "accuracy_drop" in budget or ("latency_ms" in budget)
  )


def allowed_weights(entries, budget) -> float:
  """The stored weights a {'params'} / {'ratio'} budget allows the planned layers."""
  dense = sum(e.layer.dense_weight_params for e in entries)
  return int(budget["params"]) if "params" in budget else dense / float(budget["ratio"])


def _allocate(entries, weights: dict, budget) -> dict[str, dict]:
  allowed = allowed_weights(entries, budget)

  plain = {e.name: {k: v for k, v in e.spec.items() if k not in PLAN_FIELDS} for e in entries}
  progress = _Progress(f"budget {budget}")
  fitted = {e.name: {} for e in entries}  # each layer's fit error per size, fitted once

  def sizes_at(error):
    sizes = {
      e.name: size_for_error(
        e,
        plain[e.name],
        weights[e.name],
        error,
        clamp=True,
        quiet=True,
        fitted_errors=fitted[e.name],
      )
      for e in entries
    }
    progress.step(f"relative error {error:.4f}: {total(sizes):,} weights (allowed {allowed:,.0f})")
    return sizes

  def total(sizes):
    return sum(stored_weights(e, sizes[e.name], weights[e.name].shape) for e in entries)

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
