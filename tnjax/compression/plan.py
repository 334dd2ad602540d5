"""A compression plan: layer names or glob patterns -> the layer spec each becomes.

  {"hidden": {"kind": "tt", "ranks": 8},           # sizes given
   "conv*": {"kind": "cp", "error": 0.2},           # the smallest rank within 20% error
   "fc?": {"kind": "lowrank", "ratio": 10}}         # 10x fewer weights than dense

A spec is the dict `config.model.layers` takes, where `error` (relative Frobenius
error of the weight) or `ratio` (dense weights / stored weights) may stand in for the
format's sizes; tnjax.compression.sizing turns them into sizes from the trained weight.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import warnings

from flax import linen, nnx

from tnjax import config_lib, errors
from tnjax.compression import plan_file, user_layers
from tnjax.nn import registry, spec_from_config
from tnjax.nn.adtn_generator import SharedADTN
from tnjax.nn.dense_base import FactorizedDense
from tnjax.nn.conv_base import FactorizedConv
from tnjax.nn.embed_base import FactorizedEmbed

SIZE_TARGETS = ("error", "ratio", "vbmf")
# Plan-only fields: how to size a layer, and whether it may end up larger than dense.
PLAN_FIELDS = SIZE_TARGETS + ("allow_growth",)


@dataclasses.dataclass
class PlanEntry:
  """One layer of the model the plan compresses."""

  name: str  # the layer's path, '/'-joined ('hidden', 'fc6')
  path: tuple  # its path for nnx traversal
  layer: object  # the source: a tnjax layer, or a user layer as a user_layers.SourceLayer
  spec: dict  # the target spec, sizes possibly still given as `error` / `ratio`

  @property
  def family(self) -> str:
    return self.layer.family


def _candidates(model) -> dict[str, tuple]:
  """{'/'-joined path: (path, module)} of every layer a plan can name: tnjax's own dense,
  conv and embedding layers, and the user's nnx.Linear / Conv / LinearGeneral / Einsum /
  Embed (compression.user_layers), in model order."""
  found = {}
  for path, module in nnx.iter_modules(model):
    if path and (
      isinstance(module, (FactorizedDense, FactorizedConv, FactorizedEmbed))
      or user_layers.is_user_layer(module)
    ):
      found["/".join(map(str, path))] = (path, module)
  return found


def _check_not_an_alias(model, pattern: str, available: dict) -> None:
  """A module held under two attributes is listed once, at its first path: a plan naming
  it by another is told which name to use (the layer is replaced at every path)."""
  if any(fnmatch.fnmatchcase(name, pattern) for name in available):
    return
  from tnjax.compression.convert import paths_to  # pylint: disable=g-import-not-at-top

  for name, (_, module) in available.items():
    paths = ["/".join(map(str, p)) for p in paths_to(model, module)]
    if len(paths) > 1 and any(fnmatch.fnmatchcase(p, pattern) for p in paths):
      raise errors.UserError(
        f"plan entry {pattern!r} names the layer also held as {name!r} (one module at "
        f"{', '.join(paths)}); plan it as {name!r}: it is replaced at every path."
      )


def _check_names_a_layer(model, pattern: str, available: dict) -> None:
  """A plan entry naming a module that is not a layer tnjax compresses (an nnx.ConvTranspose,
  the user's own block) is told so, not just that it matches no layer."""
  if any(fnmatch.fnmatchcase(name, pattern) for name in available):
    return
  for path, module in nnx.iter_modules(model):
    if path and "/".join(map(str, path)) == pattern:
      inside = [name for name in available if fnmatch.fnmatchcase(name, f"{pattern}/*")]
      hint = (
        f"plan its layers instead ('{pattern}/*' matches {', '.join(inside)})"
        if inside
        else f"tnjax compresses {NNX_LAYER_TYPES} layers"
      )
      raise errors.UserError(
        f"plan entry {pattern!r} is of type {_type_name(module)}, not a layer tnjax compresses; {hint}."
      )


def _source(name: str, module):
  """A planned layer as the sizing and conversion read it."""
  return user_layers.source_layer(name, module) if user_layers.is_user_layer(module) else module


def layers_of(model) -> list[dict]:
  """What a plan can compress in `model`, a row per layer: path (what a plan names), type,
  family, shape of its weight, weights (stored now), dense_weights, and how a user layer's
  weight is read (layout).
  A layer that cannot be compressed says why in `note`."""
  _check_is_nnx_model(model)
  rows = []
  for name, (_, module) in _candidates(model).items():
    row = {"path": name, "type": _type_name(module)}
    try:
      layer = _source(name, module)
    except errors.UserError as e:
      rows.append({**row, "family": "-", "shape": "-", "weights": 0, "note": str(e)})
      continue
    rows.append(
      {
        **row,
        "family": layer.family,
        "shape": "x".join(map(str, getattr(layer, "weight_shape", None) or layer.weight.shape)),
        # what the layer stores now (a factorised layer: its factors), and as a dense weight
        "weights": int(getattr(layer, "weight_params", layer.dense_weight_params)),
        "dense_weights": int(layer.dense_weight_params),
        "layout": getattr(layer, "layout", "tnjax layer"),
      }
    )
  return rows


def _type_name(module) -> str:
  if user_layers.is_user_layer(module) or type(module).__module__.startswith("flax.nnx"):
    return f"nnx.{type(module).__name__}"
  if type(module).__module__.startswith("tnjax."):
    return f"tnjax.nn.{type(module).__name__}"
  return type(module).__name__


def _check_is_nnx_model(model) -> None:
  """A run's path or a Linen module in place of an NNX model is one line saying what to pass."""
  if isinstance(model, nnx.Module):
    return
  if isinstance(model, str) or hasattr(model, "__fspath__"):
    hint = f"for a trained run, pass its model: model, config = tnjax.load({str(model)!r})"
  elif isinstance(model, linen.Module) or (hasattr(model, "items") and "params" in model):
    hint = "for a Linen module use tnjax.compression.compress_linen(module, variables, plan)"
  else:
    hint = "build or load the model first"
  raise errors.UserError(f"compress takes an NNX model (got {type(model).__name__}); {hint}.")


def resolve_plan(model, plan: dict) -> list[PlanEntry]:
  """The plan's entries against `model`, in model order; every problem is one UserError."""
  _check_is_nnx_model(model)
  if not isinstance(plan, dict) or not plan:
    raise errors.UserError(
      "a compression plan is a non-empty dict of layer name or pattern -> layer spec, e.g. "
      "{'hidden': {'kind': 'tt', 'ranks': 8}}."
    )
  if any(isinstance(m, SharedADTN) for _, m in nnx.iter_modules(model)):
    raise errors.UserError(
      "the source model shares ADTN generators between layers; compress a model whose "
      "layers hold their own weights (or densify it first)."
    )
  available = _candidates(model)
  plan_file.check_no_file_keys(plan, available, "tnjax.compress(model, layers_plan, budget={...})")
  entries = {}
  for pattern, spec in plan.items():  # in order: a layer several entries match takes the last
    _check_not_an_alias(model, pattern, available)
    _check_names_a_layer(model, pattern, available)
    names, refused = matching(pattern, available), []
    for name in names:
      path, module = available[name]
      try:
        layer = _source(name, module)
      except errors.UserError as refusal:  # a glob passes over what cannot be compressed
        refused.append(refusal)
        continue
      entries[name] = PlanEntry(name, path, layer, _checked_spec(pattern, spec, layer))
    if refused and (pattern in names or len(refused) == len(names)):
      raise refused[0]
    for refusal in refused:
      warnings.warn(f"plan entry {pattern!r} leaves out {refusal}", stacklevel=2)
  order = list(available)
  return sorted(entries.values(), key=lambda e: order.index(e.name))


NNX_LAYER_TYPES = "Linear, Conv, LinearGeneral, Einsum or Embed"


def matching(pattern: str, names, what: str = "layer", types: str = NNX_LAYER_TYPES) -> list[str]:
  """The names (in their order) a plan entry's name or glob matches; none is one line
  listing them all (or, with none, the layer `types` that can be compressed)."""
  matched = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
  if not matched:
    raise errors.UserError(
      f"plan entry {pattern!r} matches no {what}; the model's layers are "
      f"{', '.join(names) or f'none (no {types})'}."
    )
  return matched


def _checked_spec(pattern: str, spec, layer) -> dict:
  if hasattr(spec, "items"):  # NumPy / JAX scalars (a ratio from np.prod) as Python numbers
    spec = {k: config_lib.plain_number(v) for k, v in spec.items()}
  if not isinstance(spec, dict) or "kind" not in spec:
    raise errors.UserError(
      f"plan entry {pattern!r}: the spec must be a dict with a 'kind' key naming its format "
      f"(one of {', '.join(registry.kinds(layer.family))}), e.g. {{'kind': 'tt', 'ratio': 4}}; "
      f"got {spec!r}."
    )
  kinds = registry.kinds(layer.family)
  if spec["kind"] not in kinds:
    raise errors.UserError(
      f"plan entry {pattern!r}: format {spec['kind']!r} has no {layer.family} layer; "
      f"{layer.family} layers can be {', '.join(kinds)}."
    )
  targets = [t for t in SIZE_TARGETS if t in spec]
  if len(targets) > 1:
    raise errors.UserError(
      f"plan entry {pattern!r}: give one of {', '.join(targets)}, not {len(targets)}."
    )
  spec_type = registry.layer_class(layer.family, spec["kind"]).spec_type
  sizes = [f for f in getattr(spec_type, "size_fields", ()) if f in spec]
  if targets and sizes:
    given = ", ".join(f"{f}={spec[f]}" for f in sizes)
    raise errors.UserError(
      f"plan entry {pattern!r}: {targets[0]} chooses the size, so {given} would be ignored; "
      "give one of them."
    )
  if spec["kind"] == "adtn" and spec.get("share"):
    raise errors.UserError(f"plan entry {pattern!r}: compressed ADTN layers cannot share.")
  _check_plan_fields(pattern, spec)
  try:  # the format's own fields, typed and ranged by its spec class
    spec_from_config({k: v for k, v in spec.items() if k not in PLAN_FIELDS})
  except (ValueError, TypeError) as e:
    hint = ""
    if "has no field(s)" in str(e):  # a misspelt plan field reads as an unknown spec field
      hint = f" A plan entry also takes {', '.join(PLAN_FIELDS)}."
    raise errors.UserError(f"plan entry {pattern!r}: {e}{hint}") from None
  return spec


def _check_plan_fields(pattern: str, spec: dict) -> None:
  if "error" in spec and not (config_lib.is_number(spec["error"]) and 0 <= spec["error"] < 1):
    raise errors.UserError(
      f"plan entry {pattern!r}: error={spec['error']!r} must be a number in [0, 1) (the "
      "relative Frobenius error of the weight, e.g. 0.3)."
    )
  if "ratio" in spec and not (config_lib.is_number(spec["ratio"]) and spec["ratio"] > 1):
    raise errors.UserError(
      f"plan entry {pattern!r}: ratio={spec['ratio']!r} must be a number above 1 (dense "
      "weights / stored weights, e.g. 10)."
    )
  if "vbmf" in spec and spec["vbmf"] is not True:
    raise errors.UserError(
      f"plan entry {pattern!r}: vbmf={spec['vbmf']!r} must be True (the ranks EVBMF estimates "
      "from the trained weight), or left out."
    )
  if "allow_growth" in spec and not isinstance(spec["allow_growth"], bool):
    raise errors.UserError(
      f"plan entry {pattern!r}: allow_growth={spec['allow_growth']!r} must be True or False."
    )
