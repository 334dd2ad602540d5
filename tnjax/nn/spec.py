"""Layer specs: small frozen dataclasses saying how a layer is factorised.

A config names a spec as a dict with a `kind` key, e.g.
`{'kind': 'tt', 'ranks': 8, 'in_shape': (4, 8, 8, 4), 'out_shape': (4, 8, 8, 4)}`;
`spec_from_config` turns it into the dataclass, checking every field.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from tnjax.nn import registry
from tnjax.tensor.adtn import NONLINEARITIES

INITS = ("glorot_normal", "he_normal", "lecun_normal")


DTYPES = (None, "float32", "bfloat16", "float16", "float64")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
  """Fields every layer has.

  Attributes:
    use_bias: add a trained bias.
    init: the dense initialiser whose variance the format's factors reproduce.
    method: execution path: 'auto' (tnjax.tensor.plan chooses per shape and
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
    raise ValueError(
      f"{name}: in_shape {spec.in_shape} and out_shape {spec.out_shape} have "
      "different lengths; each factor pairs one input and one output mode."
    )


@dataclasses.dataclass(frozen=True)
class TTSpec(LayerSpec):
  """Tensor-Train matrix (Novikov et al. 2015).

  Attributes:
    ranks: one TT-rank for every bond, or d-1 per-bond ranks.
    in_shape, out_shape: input / output modes; None factorises the feature
      counts automatically into `order` balanced modes (padding if needed).
    order: number of cores when shapes are automatic.
    clip_ranks: clip ranks above a bond's useful maximum (fewer weights, the same
      matrices). False keeps every bond at the given rank, as Novikov et al.'s
      code and their parameter counts do.
  """

  ranks: int | tuple[int, ...] = 8
  in_shape: tuple[int, ...] | None = None
  out_shape: tuple[int, ...] | None = None
  order: int = 4
  clip_ranks: bool = True
  int_fields = ("ranks", "order")  # whole numbers (checked in LayerSpec)
  kind = "tt"
  size_fields = ("ranks",)

  def largest_useful_size(self, layer) -> int:
    from tnjax.tensor.tt import max_tt_ranks  # pylint: disable=g-import-not-at-top

    return max(max_tt_ranks(layer.in_shape, layer.out_shape) or (1,))

  def stored_sizes(self, layer) -> dict:
    inner = tuple(int(core.shape[0]) for core in layer.cores[1:])  # TTDense and TTConv
    if not self.clip_ranks or not inner:
      return {}
    return {"ranks": inner[0] if len(set(inner)) == 1 else inner}

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
  int_fields = ("rank",)  # whole numbers (checked in LayerSpec)
  kind = "lowrank"
  size_fields = ("rank",)

  def largest_useful_size(self, layer) -> int:
    return min(layer.weight_shape[0], layer.weight_shape[1])

  def vbmf_sizes(self, weight) -> dict:
    from tnjax.tensor.vbmf import vbmf_rank  # pylint: disable=g-import-not-at-top

    return {"rank": vbmf_rank(weight)}

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
    factor_init: 'variance' (the factors' product has the dense init's variance)
      or, for a conv, 'cp_als': the factors of a CP-ALS (100 sweeps) of a random
      kernel randn / (kh kw), as the CPAC-Conv authors' code initialises them.
  """

  rank: int = 4
  in_shape: tuple[int, ...] | None = None
  out_shape: tuple[int, ...] | None = None
  order: int = 4
  factor_init: str = "variance"
  int_fields = ("rank", "order")  # whole numbers (checked in LayerSpec)
  kind = "cp"
  size_fields = ("rank",)

  def largest_useful_size(self, layer) -> int:
    """The rank at which CP stores the dense count (`layer` is sized at rank 1; a dense
    layer's CP factors the tensorised weight, so a rank costs less than in+out)."""
    return max(1, math.prod(layer.weight_shape) // max(1, layer.weight_params // layer.spec.rank))

  def __post_init__(self):
    super().__post_init__()
    if self.rank < 1:
      raise ValueError(f"CPSpec.rank must be >= 1, got {self.rank}.")
    if self.factor_init not in ("variance", "cp_als"):
      raise ValueError(
        f"CPSpec.factor_init={self.factor_init!r} is unknown; choose 'variance' or 'cp_als'."
      )
    _check_mode_shapes(self)


@dataclasses.dataclass(frozen=True)
class ADTNSpec(LayerSpec):
  """A weight generated by a deep tensor network (ADTN; Qing et al. 2025).

  Attributes:
    layers: number M of brick-wall layers of two-site gates.
    nonlinearity: applied between layers (see tnjax.tensor.adtn.NONLINEARITIES).
    init_noise: gates start as the orthogonal part of I + init_noise * N(0, 1).
    remat: recompute intermediate states in the backward pass (saves memory at large Q).
    scan_layers: generate with one `lax.scan` over layers 2..M: compiles about twice as
      fast at M = 8 (tnjax.tensor.adtn.adtn_generate), the same numbers.
    share: a group name: the layers of one model naming the same group read their
      weights from one generator (tnjax.nn.adtn_sharing); '' gives the layer its own.
  """

  layers: int = 2
  nonlinearity: str = "relu"
  init_noise: float = 1.0
  remat: bool = False
  scan_layers: bool = False
  share: str = ""
  int_fields = ("layers",)  # whole numbers (checked in LayerSpec)
  kind = "adtn"
  paths = ("dense",)  # generate the weight, then one GEMM / conv
  size_fields = ("layers",)
  error_sizable = False  # its weights are trained, not fitted

  def largest_useful_size(self, layer) -> int:
    return 64

  def __post_init__(self):
    super().__post_init__()
    if self.layers < 1:
      raise ValueError(f"ADTNSpec.layers must be >= 1, got {self.layers}.")
    if self.nonlinearity not in NONLINEARITIES:
      raise ValueError(
        f"ADTNSpec.nonlinearity={self.nonlinearity!r} is unknown; "
        f"choose one of {sorted(NONLINEARITIES)}."
      )
    if self.init_noise < 0:
      raise ValueError(f"ADTNSpec.init_noise must be >= 0, got {self.init_noise}.")


@dataclasses.dataclass(frozen=True)
class SketchSpec(LayerSpec):
  """Tensor sketch (Kasiviswanathan, Narodytska & Jin 2018): SK-FC / SK-CONV.

  Attributes:
    sketch_size: k, rows of each random sign matrix U (k x d).
    num_sketches: l, sketch pairs per mode; W_hat averages the 2l estimates.
    seed: seed of the fixed U matrices (then they do not depend on the model's seed;
      each layer still gets its own); None draws them from the model's rngs.
  """

  sketch_size: int = 8
  num_sketches: int = 1
  seed: int | None = None
  int_fields = ("sketch_size", "num_sketches")  # whole numbers (checked in LayerSpec)
  kind = "sketch"
  size_fields = ("sketch_size",)

  def largest_useful_size(self, layer) -> int:
    return max(layer.weight_shape[-2], layer.weight_shape[-1])

  def __post_init__(self):
    super().__post_init__()
    if self.sketch_size < 1 or self.num_sketches < 1:
      raise ValueError(
        f"SketchSpec.sketch_size and num_sketches must be >= 1, got "
        f"sketch_size={self.sketch_size}, num_sketches={self.num_sketches}."
      )


@dataclasses.dataclass(frozen=True)
class TuckerSpec(LayerSpec):
  """Tucker-2 convolution (Kim et al. 2016): channel ranks of a conv kernel.

  Attributes:
    in_rank: R3, channels after the 1x1 input projection.
    out_rank: R4, channels of the core conv before the 1x1 expansion.
  """

  in_rank: int = 16
  out_rank: int = 16
  int_fields = ("in_rank", "out_rank")  # whole numbers (checked in LayerSpec)
  kind = "tucker"
  size_fields = ("in_rank", "out_rank")

  def largest_useful_size(self, layer) -> int:
    return min(layer.weight_shape[-2], layer.weight_shape[-1])

  def size_limits(self, layer) -> dict:
    return {"in_rank": layer.weight_shape[-2], "out_rank": layer.weight_shape[-1]}

  def vbmf_sizes(self, weight) -> dict:
    from tnjax.tensor.vbmf import tucker2_vbmf_ranks  # pylint: disable=g-import-not-at-top

    in_rank, out_rank = tucker2_vbmf_ranks(weight)
    return {"in_rank": in_rank, "out_rank": out_rank}

  def __post_init__(self):
    super().__post_init__()
    if self.in_rank < 1 or self.out_rank < 1:
      raise ValueError(
        f"TuckerSpec.in_rank and out_rank must be >= 1, got in_rank="
        f"{self.in_rank}, out_rank={self.out_rank}."
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
