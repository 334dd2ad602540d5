"""Layer specs: small frozen dataclasses saying how a layer is factorised.

A config names a spec as a dict with a `kind` key, e.g.
`{'kind': 'tt', 'ranks': 8, 'in_shape': (4, 8, 8, 4), 'out_shape': (4, 8, 8, 4)}`;
`spec_from_config` turns it into the dataclass, checking every field. Here: the base
class every spec extends and the dense baseline's; each format's spec lives in its layer
file (TTSpec in tt_dense.py, CPSpec in cp_dense.py, ...), so a new format touches no other.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from tnjax.nn import registry

INITS = ("glorot_normal", "he_normal", "lecun_normal")


DTYPES = (None, "float32", "bfloat16", "float16", "float64")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """Fields every layer has.

  Attributes:
    use_bias: add a trained bias.
    init: the dense initialiser whose variance the format's factors reproduce.
    method: execution path: 'auto' (tnjax.tensor.execution chooses per shape and
      device), 'factored' (never form the weight) or 'dense' (rebuild the weight,
      then one GEMM or convolution).
    dtype: compute dtype of this layer (e.g. 'bfloat16'); None: the model's.
      Parameters stay in float32 either way.
  """

  use_bias: bool = True
  init: str = "glorot_normal"
  method: str = "auto"
  dtype: str | None = None

  kind = "base"
  # Formats with one way to run (a dense weight, or ADTN's generated one) list only it.
  paths = ("factored", "dense")

  int_fields = ()  # fields that must hold whole numbers (a class attribute, not a field)
  # Sizing (tnjax.compression.sizing): the fields one size knob sets (e.g. ('rank',)),
  # and whether a target `error` can size the format (fitted, not trained, weights).
  size_fields = ()
  error_sizable = True
  inits = INITS  # the `init` names the format draws its parameters by

  def largest_useful_size(self, layer) -> int:
    """The knob above which `layer` (this format, sized for a weight) gains nothing."""
    return 1

  def size_limits(self, layer) -> dict:
    """{size field: its largest useful value} for `layer`; more only adds weights."""
    return {field: self.largest_useful_size(layer) for field in self.size_fields}

  def stored_sizes(self, layer) -> dict:
    """{size field: the value `layer` actually stores} where it differs from the spec's
    (TT-ranks clipped to a bond's maximum); sizing writes these into the chosen spec."""
    del layer
    return {}

  def vbmf_sizes(self, weight) -> dict | None:
    """{size field: the rank EVBMF estimates from the trained `weight`} for the formats
    whose sizes are matrix ranks (a plan's "vbmf": True); None for the others."""
    del weight
    return None

  def fit_errors(self, weight) -> dict | None:
    """{size knob: the relative error of this format's fit of `weight` at that size} where
    a closed form gives every size at once; None: an `error` target fits each candidate."""
    del weight
    return None

  def __post_init__(self):
    name = type(self).__name__
    for field in self.int_fields:
      value = getattr(self, field)
      values = value if isinstance(value, (tuple, list)) else (value,)
      if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(
          f"{name}.{field} must be a whole number (or a tuple of them), got {value!r}; "
          "ranks and sizes count rows and columns."
        )
    if self.method not in ("auto",) + self.paths:
      raise ValueError(
        f"{name}.method={self.method!r} is not a path of this format; choose from "
        f"{('auto',) + self.paths}."
      )
    if self.init not in self.inits:
      raise ValueError(f"{name}.init={self.init!r} is unknown; choose one of {self.inits}.")
    if self.dtype not in DTYPES:
      raise ValueError(f"{name}.dtype={self.dtype!r} is unknown; choose one of {DTYPES}.")

  def to_config(self) -> dict:
    """Plain dict that `spec_from_config` turns back into this spec."""
    return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class DenseSpec(LayerSpec):
  """An ordinary dense (or conv) layer: the baseline every format is compared with."""

  kind = "dense"
  paths = ("dense",)


def check_mode_shapes(spec):
  """Validates `order` and the optional `in_shape` / `out_shape` of a tensorised spec."""
  name = type(spec).__name__
  if spec.order < 1:
    raise ValueError(f"{name}.order must be >= 1, got {spec.order}.")
  for field in ("in_shape", "out_shape"):
    shape = getattr(spec, field)
    if shape is not None and (len(shape) == 0 or any(int(s) < 1 for s in shape)):
      raise ValueError(f"{name}.{field} must hold positive ints, got {shape}.")
  if (spec.in_shape is None) != (spec.out_shape is None):
    raise ValueError(f"{name}: give both in_shape and out_shape, or neither (automatic).")
  if spec.in_shape is not None and len(spec.in_shape) != len(spec.out_shape):
    raise ValueError(
      f"{name}: in_shape {spec.in_shape} and out_shape {spec.out_shape} have "
      "different lengths; each factor pairs one input and one output mode."
    )


def _freeze(value):
  # Configs hold lists (JSON, CLI); specs must be hashable, so lists become tuples.
  if isinstance(value, (list, tuple)):
    return tuple(_freeze(v) for v in value)
  return value


def spec_from_config(config: Any) -> LayerSpec:
  """Builds a spec from a dict / ConfigDict with a `kind` key (or returns a spec as is)."""
  if isinstance(config, LayerSpec):
    return config
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping) or "kind" not in config:
    raise ValueError(f"A layer spec must be a mapping with a 'kind' key, got {config!r}.")
  fields = dict(config)
  kind = fields.pop("kind")
  cls = registry.spec_class(kind)  # the kinds of the registered layers
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(fields) - known)
  if unknown:
    raise ValueError(
      f"Layer kind {kind!r} has no field(s) {unknown}; its fields are {sorted(known)}."
    )
  return cls(**{k: _freeze(v) for k, v in fields.items()})
