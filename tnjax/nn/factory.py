"""One factory: (spec, sizes) -> module, read from tnjax.nn.registry. Models never name a
layer class."""

from __future__ import annotations

import math


from tnjax.nn import adtn_share_groups
from tnjax.nn import registry
from tnjax.nn.base import layer_dtype
from tnjax.nn.spec import spec_from_config


def _shared_generator(spec, size: int) -> dict:
  """generator= / offset= for an ADTN layer of a `share` group (tnjax.nn.adtn_share_groups)."""
  if spec.kind != "adtn" or not spec.share:
    return {}
  return adtn_share_groups.shared_source(spec, size)


def _pair(value) -> tuple:
  return (value, value) if isinstance(value, int) else tuple(value)


def make_dense(spec, in_features: int, out_features: int, *, dtype=None, **layer_kwargs):
  """The dense-family layer (y = x @ W + b) that `spec` describes.

  Args:
    spec: a LayerSpec, or a mapping with a 'kind' key (see spec_from_config).
    in_features, out_features: the weight's shape.
    dtype: compute dtype; None keeps the input's. `spec.dtype` (where a model puts
      its own dtype) wins.
    **layer_kwargs: FactorizedDense's (rngs, param_dtype, precision).

  Returns:
    The registered layer of that kind, initialised.
  """
  spec = spec_from_config(spec)
  return registry.layer_class("dense", spec.kind)(
    in_features,
    out_features,
    spec,
    dtype=layer_dtype(spec, dtype),
    **layer_kwargs,
    **_shared_generator(spec, in_features * out_features),
  )


def make_conv(
  spec, in_channels: int, out_channels: int, kernel_size, *, dtype=None, **layer_kwargs
):
  """The conv-family layer (NHWC inputs, HWIO kernel) that `spec` describes.

  Args:
    spec: a LayerSpec, or a mapping with a 'kind' key (see spec_from_config).
    in_channels, out_channels, kernel_size: the kernel's shape (an int is square).
    dtype: compute dtype, as in make_dense.
    **layer_kwargs: FactorizedConv's (rngs, strides, padding, kernel_dilation,
      param_dtype, precision).

  Returns:
    The registered layer of that kind, initialised.
  """
  spec = spec_from_config(spec)
  kernel_entries = math.prod(_pair(kernel_size)) * in_channels * out_channels
  return registry.layer_class("conv", spec.kind)(
    in_channels,
    out_channels,
    kernel_size,
    spec,
    dtype=layer_dtype(spec, dtype),
    **layer_kwargs,
    **_shared_generator(spec, kernel_entries),
  )
