"""Shared by sketch_mnist / sketch_cifar10 (not a config itself): which layers are
sketched, and Tucker / TT baselines matched to the sketches' parameter counts.

A network is described by its compressible layers: name -> ('conv', (kh, kw, in, out))
or ('dense', (in, out)). Sketched convs get SK-CONV, sketched FCs SK-FC; the
baseline replaces each conv by a Tucker-2 conv and each FC by a TT-layer whose
weight count is the closest to that of the sketch it is compared with.
"""

from __future__ import annotations

import itertools
import math
import warnings

from tnjax.tensor import shapes, sketch, tt, tucker

METHODS = ("sketch", "tucker_tt", "dense")
TT_ORDER = 3  # the TT baselines' number of cores


def _tt_modes(dims) -> tuple:
  return shapes.resolve_tt_shapes(dims[0], dims[1], order=TT_ORDER)


def weight_params(family: str, dims, spec: dict) -> int:
  """Weight entries (bias excluded) of the layer `spec` describes at these sizes.

  Closed forms from tnjax.tensor for the kinds these sweeps use; no layer is built.
  """
  kind = spec.get("kind", "dense")
  if kind == "dense":
    return math.prod(dims)
  if kind == "sketch":
    l, k = spec.get("num_sketches", 1), spec["sketch_size"]
    if family == "conv":
      return sketch.conv_sketch_num_params(dims, l, k)
    return sketch.dense_sketch_num_params(dims[0], dims[1], l, k)
  if kind == "tucker" and family == "conv":
    return tucker.tucker2_num_params(dims, spec["in_rank"], spec["out_rank"])
  if kind == "tt" and family == "dense":
    with warnings.catch_warnings():  # ranks above the useful maximum are clipped, with a warning
      warnings.simplefilter("ignore")
      return tt.tt_num_params(*_tt_modes(dims), spec["ranks"])
  raise ValueError(f"sketch_common counts dense, sketch, tucker (conv) and tt (dense) layers, "
                   f"not a {family} layer of kind {kind!r}.")


def sketch_specs(layer_dims: dict, fc_sketch_size: int, conv_sketch_size: int,
                 num_sketches: int = 1) -> dict:
  return {name: {"kind": "sketch", "num_sketches": num_sketches,
                 "sketch_size": conv_sketch_size if family == "conv" else fc_sketch_size}
          for name, (family, _) in layer_dims.items()}


def _closest(candidates, target: int, family: str, dims) -> dict:
  return min(candidates, key=lambda spec: abs(weight_params(family, dims, spec) - target))


def matched_baseline_specs(layer_dims: dict, target_specs: dict) -> dict:
  """Per layer: the Tucker-2 conv / TT-layer whose count is closest to the target spec's."""
  specs = {}
  for name, (family, dims) in layer_dims.items():
    target = weight_params(family, dims, target_specs[name])
    if family == "conv":
      n_in, n_out = dims[2], dims[3]
      # Ranks in proportion to the channels (within 2x), as Tucker-2 rank selection gives.
      candidates = [{"kind": "tucker", "in_rank": a, "out_rank": b}
                    for a, b in itertools.product(range(1, n_in + 1), range(1, n_out + 1))
                    if 0.5 <= (a / n_in) / (b / n_out) <= 2.0]
    else:  # the largest TT-rank within the target and the next one up
      rank = tt.tt_ranks_for_budget(*_tt_modes(dims), target)
      candidates = [{"kind": "tt", "ranks": r, "order": TT_ORDER} for r in (rank, rank + 1)]
    specs[name] = _closest(candidates, target, family, dims)
  return specs


def layer_specs(method: str, layer_dims: dict, fc_sketch_size: int, conv_sketch_size: int) -> dict:
  """config.model.layers for one point: the sketch, its matched baseline, or {} (dense)."""
  if method not in METHODS:
    raise ValueError(f"method={method!r} is unknown; choose one of {METHODS}.")
  if method == "dense":
    return {}
  sketches = sketch_specs(layer_dims, fc_sketch_size, conv_sketch_size)
  return sketches if method == "sketch" else matched_baseline_specs(layer_dims, sketches)


def total_weight_params(layer_dims: dict, specs: dict) -> int:
  """Weights of the compressible layers under `specs` (dense where a layer is absent)."""
  return sum(weight_params(family, dims, specs.get(name, {"kind": "dense"}))
             for name, (family, dims) in layer_dims.items())


def sweep_points(layer_dims: dict, rates) -> list[dict]:
  """For each (fc k, conv k) rate: the sketch and its matched Tucker/TT baseline; then dense."""
  points = []
  for fc_k, conv_k in rates:
    for method in ("sketch", "tucker_tt"):
      points.append({"model.layers": layer_specs(method, layer_dims, fc_k, conv_k)})
  points.append({"model.layers": {}})
  return points
