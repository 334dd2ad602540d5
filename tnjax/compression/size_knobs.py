"""A format's one size knob (TT ranks, CP / low-rank rank, Tucker-2 ranks, sketch size,
ADTN depth), and what a planned layer stores at a given knob, counted on an abstract
layer so that any format and family works."""

from __future__ import annotations

import contextlib
import contextvars
import warnings

import jax
import numpy as np
from flax import nnx

from tnjax import errors
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


def spec_class(entry, spec: dict):
  return registry.layer_class(entry.family, spec["kind"]).spec_type


def size_fields(entry, spec: dict) -> tuple[str, ...]:
  fields = spec_class(entry, spec).size_fields
  if not fields:
    raise errors.UserError(
      f"{entry.name}: format {spec['kind']!r} has no size to choose; `error`, `ratio` and "
      "budgets size the other formats."
    )
  return fields


def with_knob(entry, spec: dict, value: int, shape) -> dict:
  """`spec` at knob `value`: every size field set to it, each clipped to its own largest
  useful value (Tucker-2's in_rank stops at the in-channels while out_rank goes on)."""
  fields = size_fields(entry, spec)
  if len(fields) == 1 or int(value) == 1:
    return {**spec, **{field: int(value) for field in fields}}
  limits = limits_of(entry, spec, shape)
  return {**spec, **{field: min(int(value), int(limits[field])) for field in fields}}


# {(family, spec, shape, layer options): abstract layer} inside remembered_sizes(), else None.
_REMEMBERED = contextvars.ContextVar("abstract_layers", default=None)


@contextlib.contextmanager
def remembered_sizes():
  """Within it (a decorator too), each planned layer's abstract layer at a given spec is
  built once: a budget's bisection or a size search asks for the same sizes dozens of times,
  and nnx.eval_shape traces the layer's initialisation each time (LeNet's two-layer budget:
  354 traces, 16 s of its 24). Scoped to the call, so nothing outlives it."""
  if _REMEMBERED.get() is not None:  # an outer call already remembers
    yield
    return
  token = _REMEMBERED.set({})
  try:
    yield
  finally:
    _REMEMBERED.reset(token)


def abstract_layer(entry, spec: dict, shape):
  remembered, kwargs = _REMEMBERED.get(), layer_kwargs(entry.layer)
  # What the abstract layer depends on, by value (dtypes, conv geometry, sizes).
  key = (entry.family, repr(sorted(spec.items())), tuple(shape), repr(sorted(kwargs.items())))
  if remembered is not None and key in remembered:
    return remembered[key]
  cls = registry.layer_class(entry.family, spec["kind"])
  weight = jax.ShapeDtypeStruct(tuple(shape), np.float32)
  with warnings.catch_warnings():  # a candidate's clipped ranks: not the chosen size's
    warnings.simplefilter("ignore")
    layer = nnx.eval_shape(
      lambda: cls._for_weight(weight, spec_from_config(spec), rngs=nnx.Rngs(0), **kwargs)
    )
  if remembered is not None:
    remembered[key] = layer
  return layer


def settled(entry, spec: dict, shape) -> dict:
  """The chosen spec with its sizes as the layer stores them (a uniform TT-rank clipped at
  the edge bonds becomes per-bond ranks): the report names what is stored, and the final
  fit has nothing to warn about."""
  stored = spec_from_config(spec).stored_sizes(abstract_layer(entry, spec, shape))
  return {**spec, **stored}


def stored_weights(entry, spec: dict, shape) -> int:
  """The weights the planned layer stores at `spec`."""
  return abstract_layer(entry, spec, shape).weight_params


def probe(entry, spec: dict, shape):
  """(spec object, abstract layer) at the smallest size: what the size limits read."""
  smallest = with_knob(entry, spec, 1, shape)
  return spec_from_config(smallest), abstract_layer(entry, smallest, shape)


def limits_of(entry, spec: dict, shape) -> dict:
  """{size field: its largest useful value} for the planned layer."""
  spec_object, layer = probe(entry, spec, shape)
  return spec_object.size_limits(layer)


def highest(entry, spec: dict, shape) -> int:
  """The largest knob that still changes the layer (every field at its own limit)."""
  return int(max(limits_of(entry, spec, shape).values()))


def largest_storing(entry, spec: dict, shape, weights: float) -> int:
  """The largest knob whose planned layer stores at most `weights` (0: none does)."""
  high = highest(entry, spec, shape)
  too_big = lambda k: stored_weights(entry, with_knob(entry, spec, k, shape), shape) > weights  # noqa: E731
  return smallest_true(1, high + 1, too_big) - 1


def smallest_true(low: int, high: int, good) -> int:
  """The smallest value in [low, high] for which good(value) holds (good is monotone);
  high if none."""
  while low < high:
    middle = (low + high) // 2
    if good(middle):
      high = middle
    else:
      low = middle + 1
  return low


def smallest_true_from_below(low: int, high: int, good) -> int:
  """smallest_true, found by trying low, low + 1, low + 3, low + 7, ... first and bisecting
  the last gap: no value far above the answer is tried, where each try is a dearer fit
  (a CP error search at rank 33 used to start with CP-ALS at rank 293)."""
  below, step = low - 1, 1
  while (probe := min(low + step - 1, high)) < high:
    if good(probe):
      return smallest_true(below + 1, probe, good)
    below, step = probe, step * 2
  return smallest_true(below + 1, high, good)
