"""Shared by sketch_mnist / sketch_cifar10 (not a config itself): which layers are
sketched, and Tucker / TT baselines matched to the sketches' parameter counts.

A network is described by its compressible layers: name -> ('conv', (kh, kw, in, out))
or ('dense', (in, out)). Sketched convs get SK-CONV, sketched FCs SK-FC; the
baseline replaces each conv by a Tucker-2 conv and each FC by a TT-layer whose
weight count is the closest to that of the sketch it is compared with.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings

from tnjax.tensor import shapes, sketch, tt, tucker

METHODS = ("sketch", "tucker_tt", "dense")
SCOPES = ("all", "conv")
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
  raise ValueError(
    f"sketch_common counts dense, sketch, tucker (conv) and tt (dense) layers, "
    f"not a {family} layer of kind {kind!r}."
  )


def sketch_specs(
  layer_dims: dict, fc_sketch_size: int, conv_sketch_size: int, num_sketches: int = 1
) -> dict:
  return {
    name: {
      "kind": "sketch",
      "num_sketches": num_sketches,
      "sketch_size": conv_sketch_size if family == "conv" else fc_sketch_size,
    }
    for name, (family, _) in layer_dims.items()
  }


def _closest(candidates, target: int, family: str, dims) -> dict:
  return min(candidates, key=lambda spec: abs(weight_params(family, dims, spec) - target))


def _baseline_candidates(family: str, dims, target: int) -> list[dict]:
  """A layer's Tucker-2 (conv) or TT (FC) specs near `target` weights, fewest first."""
  if family == "conv":
    n_in, n_out = dims[2], dims[3]
    # Ranks in proportion to the channels (within 2x), as Tucker-2 rank selection gives.
    candidates = [
      {"kind": "tucker", "in_rank": a, "out_rank": b}
      for a, b in itertools.product(range(1, n_in + 1), range(1, n_out + 1))
      if 0.5 <= (a / n_in) / (b / n_out) <= 2.0
    ]
  else:  # TT-ranks around the largest one within the target
    rank = tt.tt_ranks_for_budget(*_tt_modes(dims), target)
    candidates = [
      {"kind": "tt", "ranks": r, "order": TT_ORDER} for r in range(max(1, rank - 2), rank + 4)
    ]
  return sorted(candidates, key=lambda spec: weight_params(family, dims, spec))


def matched_baseline_specs(layer_dims: dict, target_specs: dict) -> dict:
  """Per layer a Tucker-2 conv / TT-layer, together holding at least as many weights as
  the target specs (never fewer: the baseline is not handicapped), and as few more as
  the discrete ranks allow.

  Each layer starts at the candidate closest to its target; while the total is short,
  the layer whose next larger candidate adds the fewest weights moves up; then every
  combination within one candidate of that choice is tried for the smallest total
  that still reaches the goal.
  """
  options, chosen, goal = {}, {}, 0
  for name, (family, dims) in layer_dims.items():
    target = weight_params(family, dims, target_specs[name])
    goal += target
    options[name] = [
      (weight_params(family, dims, c), c) for c in _baseline_candidates(family, dims, target)
    ]
    chosen[name] = min(
      range(len(options[name])),
      key=lambda i, name=name, target=target: abs(options[name][i][0] - target),
    )

  def total():
    return sum(options[name][i][0] for name, i in chosen.items())

  while total() < goal:
    growable = [name for name, i in chosen.items() if i + 1 < len(options[name])]
    if not growable:
      raise ValueError(f"No Tucker/TT baseline reaches the sketch's {goal} weights.")
    name = min(growable, key=lambda n: options[n][chosen[n] + 1][0] - options[n][chosen[n]][0])
    chosen[name] += 1
  names = list(chosen)
  windows = [range(max(0, chosen[n] - 1), min(len(options[n]), chosen[n] + 2)) for n in names]
  best = min(
    (
      combo
      for combo in itertools.product(*windows)
      if sum(options[n][i][0] for n, i in zip(names, combo)) >= goal
    ),
    key=lambda combo: sum(options[n][i][0] for n, i in zip(names, combo)),
  )
  return {n: options[n][i][1] for n, i in zip(names, best)}


def layer_specs(
  method: str,
  layer_dims: dict,
  fc_sketch_size: int,
  conv_sketch_size: int,
  num_sketches: int = 1,
  scope: str = "all",
) -> dict:
  """config.model.layers for one point: the sketch, its matched baseline, or {} (dense).

  scope='conv' compresses only the conv layers (the paper's first question: sketch
  vs Tucker); 'all' the convs and FCs (its second: sketch vs Tucker + TT).
  """
  if method not in METHODS:
    raise ValueError(f"method={method!r} is unknown; choose one of {METHODS}.")
  if scope not in SCOPES:
    raise ValueError(f"scope={scope!r} is unknown; choose one of {SCOPES}.")
  if method == "dense":
    return {}
  dims = {name: d for name, d in layer_dims.items() if scope == "all" or d[0] == "conv"}
  sketches = sketch_specs(dims, fc_sketch_size, conv_sketch_size, num_sketches)
  return sketches if method == "sketch" else matched_baseline_specs(dims, sketches)


def total_weight_params(layer_dims: dict, specs: dict) -> int:
  """Weights of the compressible layers under `specs` (dense where a layer is absent)."""
  return sum(
    weight_params(family, dims, specs.get(name, {"kind": "dense"}))
    for name, (family, dims) in layer_dims.items()
  )


def sweep_points(layer_dims: dict, rates, sketch_counts=None) -> list[dict]:
  """The paper's comparisons, each sketch beside its baseline of at least equal weights:

  - convs and FCs: for each (fc k, conv k) rate, the sketch and Tucker-2 + TT;
  - convs only: for each rate, the sketched convs and Tucker-2 convs;
  - `sketch_counts` (l, fc k, conv k) triples with l k fixed: the number of sketches
    at an equal budget;
  - the dense network.
  """
  points = []
  for scope in SCOPES:
    for fc_k, conv_k in rates:
      for method in ("sketch", "tucker_tt"):
        points.append({"model.layers": layer_specs(method, layer_dims, fc_k, conv_k, scope=scope)})
  for l, fc_k, conv_k in sketch_counts or ():
    points.append({"model.layers": layer_specs("sketch", layer_dims, fc_k, conv_k, l)})
  points.append({"model.layers": {}})
  unique = {json.dumps(p, sort_keys=True): p for p in points}  # e.g. conv-only at equal conv k
  return list(unique.values())
