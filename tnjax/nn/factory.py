"""One factory: (spec, sizes) -> module, read from tnjax.nn.registry. Models never name a
layer class."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from tnjax.nn import registry
from tnjax.nn.spec import spec_from_config


def make_dense(
  spec,
  in_features: int,
  out_features: int,
  *,
  dtype=None,
  param_dtype=jnp.float32,
  precision=None,
  rngs: nnx.Rngs,
) -> nnx.Module:
  """Builds the dense-family layer that `spec` (a spec or a config dict) describes.

  Args:
    spec: a LayerSpec, or a mapping with a 'kind' key (see spec_from_config).
    in_features: input width.
    out_features: output width.
    dtype: computation dtype (None: the input's).
    param_dtype: dtype the parameters are stored in.
    precision: lax precision of the layer's contractions.
    rngs: parameter initialisation keys.
  """
  spec = spec_from_config(spec)
  return registry.layer_class("dense", spec.kind)(
    in_features,
    out_features,
    spec,
    dtype=dtype,
    param_dtype=param_dtype,
    precision=precision,
    rngs=rngs,
  )


def make_conv(
  spec,
  in_channels: int,
  out_channels: int,
  kernel_size,
  *,
  strides=1,
  padding="SAME",
  kernel_dilation=1,
  dtype=None,
  param_dtype=jnp.float32,
  precision=None,
  rngs: nnx.Rngs,
) -> nnx.Module:
  """Builds the conv-family layer that `spec` (a spec or a config dict) describes.

  Args:
    spec: a LayerSpec, or a mapping with a 'kind' key (see spec_from_config).
    in_channels: input channels.
    out_channels: output channels.
    kernel_size: an int or (kh, kw).
    strides: an int or (sh, sw).
    padding: 'SAME', 'VALID' or explicit pairs, as in lax.conv_general_dilated.
    kernel_dilation: an int or (dh, dw).
    dtype: computation dtype (None: the input's).
    param_dtype: dtype the parameters are stored in.
    precision: lax precision of the layer's contractions.
    rngs: parameter initialisation keys.
  """
  spec = spec_from_config(spec)
  return registry.layer_class("conv", spec.kind)(
    in_channels,
    out_channels,
    kernel_size,
    spec,
    strides=strides,
    padding=padding,
    kernel_dilation=kernel_dilation,
    dtype=dtype,
    param_dtype=param_dtype,
    precision=precision,
    rngs=rngs,
  )
