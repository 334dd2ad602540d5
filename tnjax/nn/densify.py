"""Dense copies of compressed models: every chosen layer replaced by the plain Dense / Conv
layer holding its `to_dense()` weight and bias.

Two uses: evaluation of generated weights (an ADTN layer rebuilds its weight on every
call; a dense copy generates it once per evaluation, not once per batch), and merged
exports of compressed runs (a plain network that any JAX code can serve).
"""

from __future__ import annotations

from typing import Callable

from flax import nnx

from tnjax.nn.adtn_generator import GeneratedWeight
from tnjax.nn.dense_base import FactorizedDense
from tnjax.nn.conv import Conv
from tnjax.nn.conv_base import FactorizedConv
from tnjax.nn.dense import Dense
from tnjax.nn.spec import DenseSpec


def is_generated(layer) -> bool:
  """Layers whose weight is rebuilt by a generator on every call (ADTN)."""
  return isinstance(layer, GeneratedWeight)


def is_compressed(layer) -> bool:
  """Every factorised layer (not the Dense / Conv baselines themselves)."""
  return isinstance(layer, (FactorizedDense, FactorizedConv)) and not isinstance(
    layer, (Dense, Conv)
  )


def dense_layer(layer):
  """The plain Dense / Conv layer computing what `layer` computes (its to_dense() weight)."""
  options = dict(dtype=layer.dtype, param_dtype=layer.param_dtype, precision=layer.precision)
  spec = DenseSpec(use_bias=layer.bias is not None)
  if isinstance(layer, FactorizedConv):
    dense = Conv(
      layer.in_channels,
      layer.out_channels,
      layer.kernel_size,
      spec,
      strides=layer.strides,
      padding=layer.padding,
      kernel_dilation=layer.kernel_dilation,
      rngs=nnx.Rngs(0),
      **options,
    )
  else:
    dense = Dense(layer.in_features, layer.out_features, spec, rngs=nnx.Rngs(0), **options)
  dense.kernel[...] = layer.to_dense().astype(layer.param_dtype)
  if layer.bias is not None:
    dense.bias[...] = layer.bias[...]
  return dense


def densify(model: nnx.Module, choose: Callable = is_compressed) -> nnx.Module:
  """Merges factorised layers back into dense ones (e.g. to serve without tnjax).

  Args:
    model: any NNX module; changed in place (nnx.clone it first to keep the original).
    choose: which layers to merge; default every compressed one.

  Returns:
    `model`, each chosen layer replaced by its `dense_layer` (same outputs).
  """
  if not isinstance(model, nnx.Module):
    raise ValueError(f"densify takes an NNX module, got {type(model).__name__}.")
  chosen = [(path, layer) for path, layer in nnx.iter_modules(model) if path and choose(layer)]
  for path, layer in chosen:
    replace_layer(model, path, dense_layer(layer))
  return model


def layer_at(model: nnx.Module, path: tuple):
  """The module at `path` (as nnx.iter_modules gives it) inside `model`."""
  node = model
  for key in path:
    node = node[key] if isinstance(key, int) else getattr(node, key)
  return node


def replace_layer(model: nnx.Module, path: tuple, layer) -> None:
  """Puts `layer` at `path` (as nnx.iter_modules gives it) inside `model`, in place."""
  parent = layer_at(model, path[:-1])
  if isinstance(path[-1], int):
    parent[path[-1]] = layer
  else:
    setattr(parent, path[-1], layer)
