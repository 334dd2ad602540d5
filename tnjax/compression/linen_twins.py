"""NNX twins of Linen layers: an nnx.Linear / LinearGeneral / Conv / Embed holding a
Linen layer's trained parameters, which compress_model then compresses like any NNX layer.

A twin keeps what the Linen layer computes with: its options, and its parameters' stored
dtype (params cast for serving stay cast). What a factorised layer cannot honour (stacked
copies, batch dims, its own dot_general or promotion) is refused in one line.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
from flax import nnx

from tnjax import errors
from tnjax.nn.source_options import custom_call_options


def _as_tuple(value) -> tuple:
  return (value,) if isinstance(value, int) else tuple(value)


def _check_call_options(path: str, layer) -> None:
  defaults = {f.name: f.default for f in dataclasses.fields(type(layer))}
  custom = custom_call_options(layer, defaults)
  if custom:
    raise errors.UserError(
      f"{path}: nn.{type(layer).__name__} sets {', '.join(custom)}, which a factorised layer "
      "does not call; it cannot be compressed."
    )


def _check_not_stacked(path: str, layer, params: dict) -> None:
  """nn.scan / nn.vmap give a layer one stacked array for all its copies: refused."""
  name = "embedding" if isinstance(layer, nn.Embed) else "kernel"
  if isinstance(layer, nn.DenseGeneral):  # batch_dims lead its kernel (refused below)
    ndim = len(_as_tuple(layer.batch_dims)) + len(_as_tuple(layer.axis))
    ndim += len(_as_tuple(layer.features))
  else:
    ndim = len(_as_tuple(layer.kernel_size)) + 2 if isinstance(layer, nn.Conv) else 2
  if params[name].ndim != ndim:
    raise errors.UserError(
      f"{path}: its {name} has shape {tuple(params[name].shape)}, one {ndim}-d array per "
      "copy stacked by nn.scan or nn.vmap; stacked layers cannot be compressed yet: leave "
      "them out of the plan."
    )


def nnx_twin(path: str, layer, params: dict):
  """The NNX layer holding a Linen layer's trained parameters."""
  _check_not_stacked(path, layer, params)
  _check_call_options(path, layer)
  weight = params["embedding" if isinstance(layer, nn.Embed) else "kernel"]
  # The stored dtype, not the declared one: params cast for serving compute as stored.
  common = dict(dtype=layer.dtype, param_dtype=weight.dtype, rngs=nnx.Rngs(0))
  if isinstance(layer, nn.Embed):
    twin = nnx.Embed(layer.num_embeddings, layer.features, **common)
    twin.embedding[...] = weight
    # nnx.Embed reads dtype=None as its table's dtype; nn.Embed.attend promotes instead.
    twin.dtype = layer.dtype
    return twin
  if isinstance(layer, nn.Dense):
    twin = nnx.Linear(
      weight.shape[0], layer.features, use_bias=layer.use_bias, precision=layer.precision, **common
    )
  elif isinstance(layer, nn.DenseGeneral):
    if layer.batch_dims:
      raise errors.UserError(f"{path}: nn.DenseGeneral with batch_dims cannot be compressed.")
    axis = _as_tuple(layer.axis)
    twin = nnx.LinearGeneral(
      weight.shape[: len(axis)],
      _as_tuple(layer.features),
      axis=axis,
      use_bias=layer.use_bias,
      precision=layer.precision,
      **common,
    )
  else:  # nn.Conv
    twin = nnx.Conv(
      weight.shape[-2] * layer.feature_group_count,
      layer.features,
      _as_tuple(layer.kernel_size),
      strides=layer.strides or 1,
      padding=layer.padding,
      input_dilation=layer.input_dilation or 1,
      kernel_dilation=layer.kernel_dilation or 1,
      feature_group_count=layer.feature_group_count,
      use_bias=layer.use_bias,
      mask=layer.mask,
      precision=layer.precision,
      **common,
    )
  twin.kernel[...] = weight.reshape(twin.kernel.shape)
  if layer.use_bias:
    twin.bias[...] = params["bias"].reshape(twin.bias.shape)
  return twin
