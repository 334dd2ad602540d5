"""Sizes for a compressed layer from its trained weight: a target error, a compression
ratio, or a share of a whole-model budget.

Every format has one size knob (TT ranks, CP / low-rank rank, Tucker-2 ranks, sketch
size, ADTN depth). A `ratio` picks the largest knob whose stored weights are at most
dense / ratio (counted on an abstract layer, so any format and family works). An
`error` picks the smallest knob whose fit reaches that relative error (TT-SVD takes it
directly as its truncation bound; the others are searched, fitting each candidate).
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import nnx

from tnjax import errors
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


def size_for_ratio(entry, spec: dict, weight_shape, ratio: float) -> dict:
  """The spec with the largest knob storing at most dense / ratio weights (at least 1)."""
  if not ratio > 1.0:
    raise errors.UserError(f"{entry.name}: ratio={ratio} must be above 1 (dense / stored weights).")
  budget = entry.layer.dense_weight_params / ratio
  high = _highest(entry, spec, weight_shape)
  over = _search(
    1, high + 1, lambda k: _weight_params(entry, _with_knob(spec, k), weight_shape) > budget
  )
  return _with_knob(spec, max(1, over - 1))


def size_for_error(entry, spec: dict, weight, error: float) -> dict:
  """The spec with the smallest knob whose fit of `weight` is within relative `error`."""
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
    return (
      {**spec, "ranks": tuple(int(r) for r in fitted.spec.ranks)}
      if isinstance(fitted.spec.ranks, tuple)
      else {**spec, "ranks": int(fitted.spec.ranks)}
    )

  def fits(value):
    candidate = _with_knob(spec, value)
    return cls.from_dense(weight, None, spec_from_config(candidate), **kwargs).fit_error <= error

  high = _highest(entry, spec, weight.shape)
  return _with_knob(spec, _search(1, high, fits))


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
  """`entry.spec` with `error` / `ratio` replaced by the sizes they call for."""
  spec = dict(entry.spec)
  if "ratio" in spec:
    return size_for_ratio(entry, spec, weight.shape, float(spec.pop("ratio")))
  if "error" in spec:
    return size_for_error(entry, spec, weight, float(spec.pop("error")))
  check_useful(entry, spec, weight.shape)
  return spec


def allocate_budget(entries, weights: dict, budget) -> dict[str, dict]:
  """Sizes for the planned layers so that their weights together stay within `budget`.

  `budget` is {'params': N} (stored weights of the planned layers, biases aside) or
  {'ratio': R} (their dense weights / R). The rule: one relative error for every layer
  (the 'equal relative error' allocation), the smallest the budget allows, found by
  bisection; each layer then takes the smallest size that reaches it. Layers must not
  give their own sizes, only their format.
  """
  dense = sum(e.layer.dense_weight_params for e in entries)
  if "params" in budget:
    allowed = int(budget["params"])
  elif "ratio" in budget:
    allowed = dense / float(budget["ratio"])
  else:
    raise errors.UserError(f"a budget is {{'params': N}} or {{'ratio': R}}, got {budget!r}.")

  def sizes_at(error):
    return {
      e.name: size_for_error(
        e, {k: v for k, v in e.spec.items() if k not in ("error", "ratio")}, weights[e.name], error
      )
      for e in entries
    }

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
