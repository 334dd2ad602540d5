"""Layer specs: small frozen dataclasses saying how a layer is factorised.

A config names a spec as a dict with a `kind` key, e.g.
`{'kind': 'tt', 'ranks': 8, 'in_shape': (4, 8, 8, 4), 'out_shape': (4, 8, 8, 4)}`;
`spec_from_config` turns it into the dataclass, checking every field.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

INITS = ("glorot_normal", "he_normal", "lecun_normal")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """Fields every layer has."""
  use_bias: bool = True
  init: str = "glorot_normal"

  kind = "base"

  def __post_init__(self):
    if self.init not in INITS:
      raise ValueError(f"{type(self).__name__}.init={self.init!r} is unknown; choose one of {INITS}.")

  def to_config(self) -> dict:
    """Plain dict that `spec_from_config` turns back into this spec."""
    return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class DenseSpec(LayerSpec):
  """An ordinary dense (or conv) layer: the baseline every format is compared with."""
  kind = "dense"


def _check_mode_shapes(spec):
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
    raise ValueError(f"{name}: in_shape {spec.in_shape} and out_shape {spec.out_shape} have "
                     "different lengths; each factor pairs one input and one output mode.")


@dataclasses.dataclass(frozen=True)
class TTSpec(LayerSpec):
  """Tensor-Train matrix (Novikov et al. 2015).

  Attributes:
    ranks: one TT-rank for every bond, or d-1 per-bond ranks.
    in_shape, out_shape: input / output modes; None factorises the feature
      counts automatically into `order` balanced modes (padding if needed).
    order: number of cores when shapes are automatic.
  """
  ranks: int | tuple[int, ...] = 8
  in_shape: tuple[int, ...] | None = None
  out_shape: tuple[int, ...] | None = None
  order: int = 4
  kind = "tt"

  def __post_init__(self):
    super().__post_init__()
    ranks = (self.ranks,) if isinstance(self.ranks, int) else tuple(self.ranks)
    if any(int(r) < 1 for r in ranks):
      raise ValueError(f"TTSpec.ranks must be >= 1, got {self.ranks}.")
    _check_mode_shapes(self)


@dataclasses.dataclass(frozen=True)
class LowRankSpec(LayerSpec):
  """Matrix-rank baseline W = U V (Novikov et al.'s 'MR')."""
  rank: int = 8
  kind = "lowrank"

  def __post_init__(self):
    super().__post_init__()
    if self.rank < 1:
      raise ValueError(f"LowRankSpec.rank must be >= 1, got {self.rank}.")


@dataclasses.dataclass(frozen=True)
class CPSpec(LayerSpec):
  """CP decomposition: a sum of `rank` rank-1 terms.

  For a conv (CPAC-Conv, Wang, Guo & Yue 2021) the kernel's four modes are
  factorised and the shape fields are ignored. For a dense layer the weight is
  tensorised like a TT-matrix, with one factor per (in mode, out mode) pair.

  Attributes:
    rank: number of rank-1 terms R.
    in_shape, out_shape: dense only: input / output modes; None factorises the
      feature counts automatically into `order` balanced modes.
    order: dense only: number of factors when shapes are automatic.
  """
  rank: int = 4
  in_shape: tuple[int, ...] | None = None
  out_shape: tuple[int, ...] | None = None
  order: int = 4
  kind = "cp"

  def __post_init__(self):
    super().__post_init__()
    if self.rank < 1:
      raise ValueError(f"CPSpec.rank must be >= 1, got {self.rank}.")
    _check_mode_shapes(self)


SPECS: dict[str, type[LayerSpec]] = {}


def register_spec(cls: type[LayerSpec]) -> type[LayerSpec]:
  """Makes a spec class reachable from configs by its `kind`."""
  SPECS[cls.kind] = cls
  return cls


for _cls in (DenseSpec, TTSpec, LowRankSpec, CPSpec):
  register_spec(_cls)


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
  if kind not in SPECS:
    raise ValueError(f"Unknown layer kind {kind!r}; known kinds: {sorted(SPECS)}.")
  cls = SPECS[kind]
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(fields) - known)
  if unknown:
    raise ValueError(f"Layer kind {kind!r} has no field(s) {unknown}; its fields are {sorted(known)}.")
  return cls(**{k: _freeze(v) for k, v in fields.items()})
