"""One factory: (spec, sizes) -> module. Models never name a layer class."""

from __future__ import annotations

from flax import nnx

from tnjax.nn.adtn_layers import ADTNConv, ADTNDense
from tnjax.nn.conv import Conv
from tnjax.nn.cp_conv import CPConv
from tnjax.nn.cp_dense import CPDense
from tnjax.nn.dense import Dense
from tnjax.nn.lowrank_dense import LowRankDense
from tnjax.nn.sketch_layers import SketchConv, SketchDense
from tnjax.nn.spec import (ADTNSpec, CPSpec, DenseSpec, LayerSpec, LowRankSpec, SketchSpec,
                           TTSpec, TuckerSpec, spec_from_config)
from tnjax.nn.tt_conv import TTConv
from tnjax.nn.tt_dense import TTDense
from tnjax.nn.tucker_conv import TuckerConv

DENSE_LAYERS: dict[type[LayerSpec], type[nnx.Module]] = {
    DenseSpec: Dense,
    TTSpec: TTDense,
    LowRankSpec: LowRankDense,
    CPSpec: CPDense,
    ADTNSpec: ADTNDense,
    SketchSpec: SketchDense,
}


def make_dense(spec, in_features: int, out_features: int, *, rngs: nnx.Rngs, **kwargs) -> nnx.Module:
  """Builds the dense-family layer that `spec` (a spec or a config dict) describes."""
  spec = spec_from_config(spec)
  if type(spec) not in DENSE_LAYERS:
    raise ValueError(f"Layer kind {spec.kind!r} has no dense (fully-connected) form; "
                     f"dense kinds: {sorted(s.kind for s in DENSE_LAYERS)}.")
  return DENSE_LAYERS[type(spec)](in_features, out_features, spec, rngs=rngs, **kwargs)


CONV_LAYERS: dict[type[LayerSpec], type[nnx.Module]] = {
    DenseSpec: Conv,
    CPSpec: CPConv,
    ADTNSpec: ADTNConv,
    SketchSpec: SketchConv,
    TuckerSpec: TuckerConv,
    TTSpec: TTConv,
}


def make_conv(spec, in_channels: int, out_channels: int, kernel_size, *, strides=1,
              padding="SAME", kernel_dilation=1, rngs: nnx.Rngs, **kwargs) -> nnx.Module:
  """Builds the conv-family layer that `spec` (a spec or a config dict) describes."""
  spec = spec_from_config(spec)
  if type(spec) not in CONV_LAYERS:
    raise ValueError(f"Layer kind {spec.kind!r} has no convolutional form; "
                     f"conv kinds: {sorted(s.kind for s in CONV_LAYERS)}.")
  return CONV_LAYERS[type(spec)](in_channels, out_channels, kernel_size, spec, strides=strides,
                                 padding=padding, kernel_dilation=kernel_dilation, rngs=rngs,
                                 **kwargs)
