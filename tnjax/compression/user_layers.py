"""The user's own Flax NNX layers as compression sources.

nnx.Linear, nnx.Conv, nnx.LinearGeneral, nnx.Einsum and nnx.Embed are read the way
tnjax's own layers are (a family, a dense weight in that family's layout, a bias, the
options a replacement keeps) and put back as factorised layers: a Linear or Conv becomes
the format's layer itself; a LinearGeneral or Einsum a GeneralDense / EinsumDense around a
dense-family layer (its kernel as a (contracted, free) matrix); an Embed the format's
embedding layer. Anything these layers do that a factorised layer cannot (grouped or
input-dilated convolutions, masks, batched kernel axes) is refused in one line.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from flax import nnx

from tnjax import errors
from tnjax.nn.general import EinsumDense, GeneralDense, einsum_matrix, einsum_layout
from tnjax.nn.source_options import custom_call_options


@dataclasses.dataclass
class SourceLayer:
  """A user layer, seen as a compression source.

  Attributes:
    module: the user's layer.
    family: 'dense', 'conv' or 'embed': the tnjax family of its replacement.
    weight: its weight in the family's layout: (in, out), HWIO or (rows, features).
    bias: the bias the replacement takes (flattened), or None.
    layout: how `weight` was read from the layer, for the report.
    options: the replacement's constructor options (dtypes, precision, conv geometry).
    wrap: the family layer -> the module put where the user's layer was.
  """

  module: Any
  family: str
  weight: Any
  bias: Any
  layout: str
  options: dict
  wrap: Callable = lambda layer: layer

  @property
  def source_type(self) -> str:
    return f"nnx.{type(self.module).__name__}"

  @property
  def dense_weight_params(self) -> int:
    return int(math.prod(self.weight.shape))

  @property
  def weight_params(self) -> int:
    return self.dense_weight_params

  @property
  def shape_description(self) -> str:
    return "x".join(map(str, self.weight.shape))

  def to_dense(self):
    return self.weight


def _value(param):
  return None if param is None else param[...]


def _dtypes(module) -> dict:
  return dict(
    dtype=module.dtype, param_dtype=module.param_dtype, precision=getattr(module, "precision", None)
  )


def _refuse(name: str, module, why: str) -> errors.UserError:
  return errors.UserError(f"{name}: nnx.{type(module).__name__} {why}; it cannot be compressed.")


def _check_call_options(name, module) -> None:
  custom = custom_call_options(module)
  if custom:
    raise _refuse(name, module, f"sets {', '.join(custom)}, which a factorised layer does not call")


def _linear(name, module) -> SourceLayer:
  return SourceLayer(
    module, "dense", module.kernel[...], _value(module.bias), "kernel (in, out)", _dtypes(module)
  )


def _conv_padding(name, module):
  padding = module.padding
  if isinstance(padding, str):
    if padding.upper() not in ("SAME", "VALID"):
      raise _refuse(name, module, f"has padding={padding!r} (only SAME, VALID, ints or pairs)")
    return padding.upper()
  if isinstance(padding, int):
    return padding
  pairs = tuple(
    tuple(int(v) for v in (p if isinstance(p, (tuple, list)) else (p, p))) for p in padding
  )
  if len(pairs) != 2:
    raise _refuse(name, module, f"has padding={padding!r} for {len(pairs)} spatial axes")
  return pairs


def _pair(value):
  return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _conv(name, module) -> SourceLayer:
  if len(module.kernel_size) != 2:
    raise _refuse(name, module, f"is {len(module.kernel_size)}-D (tnjax compresses 2-D convs)")
  if module.feature_group_count != 1:
    raise _refuse(name, module, f"is grouped (feature_group_count={module.feature_group_count})")
  if _pair(module.input_dilation or 1) != (1, 1):
    raise _refuse(name, module, f"dilates its input (input_dilation={module.input_dilation})")
  if module.mask is not None:
    raise _refuse(name, module, "has a kernel mask")
  options = {
    **_dtypes(module),
    "strides": _pair(module.strides or 1),
    "padding": _conv_padding(name, module),
    "kernel_dilation": _pair(module.kernel_dilation or 1),
  }
  return SourceLayer(
    module, "conv", module.kernel[...], _value(module.bias), "kernel HWIO", options
  )


def _linear_general(name, module) -> SourceLayer:
  if module.batch_axis:
    raise _refuse(name, module, f"has batch axes {dict(module.batch_axis)}")
  in_features, out_features = tuple(module.in_features), tuple(module.out_features)
  matrix = module.kernel[...].reshape(math.prod(in_features), math.prod(out_features))
  bias = _value(module.bias)
  return SourceLayer(
    module,
    "dense",
    matrix,
    None if bias is None else bias.reshape(-1),
    f"kernel {in_features}+{out_features} as ({'x'.join(map(str, in_features))}, "
    f"{'x'.join(map(str, out_features))})",
    _dtypes(module),
    lambda layer: GeneralDense(layer, in_features, out_features, module.axis),
  )


def _einsum(name, module) -> SourceLayer:
  try:
    layout = einsum_layout(module.einsum_str, module.kernel_shape)
  except ValueError as e:
    raise errors.UserError(f"{name}: {e}") from None
  bias = _value(module.bias)
  return SourceLayer(
    module,
    "dense",
    einsum_matrix(module.kernel[...], layout),
    None,  # the wrapper adds the source's bias, broadcast as nnx.Einsum does
    f"{module.einsum_str}: kernel as ({layout['contracted']}, {layout['free']})",
    _dtypes(module),
    lambda layer: EinsumDense(layer, module.einsum_str, module.kernel_shape, bias),
  )


def _embed(name, module) -> SourceLayer:
  options = dict(dtype=module.dtype, param_dtype=module.param_dtype)
  return SourceLayer(
    module, "embed", module.embedding[...], None, "embedding (rows, features)", options
  )


READERS = {
  nnx.Linear: _linear,
  nnx.Conv: _conv,
  nnx.LinearGeneral: _linear_general,
  nnx.Einsum: _einsum,
  nnx.Embed: _embed,
}


def is_user_layer(module) -> bool:
  return type(module) in READERS


def _kernel_axes(module) -> int:
  """How many axes one layer's kernel has (the weight a plan replaces)."""
  if isinstance(module, nnx.Conv):
    return len(module.kernel_size) + 2
  if isinstance(module, nnx.LinearGeneral):  # batch axes lead (refused by the reader)
    features = tuple(module.in_features) + tuple(module.out_features)
    return len(module.batch_axis or ()) + len(features)
  if isinstance(module, nnx.Einsum):
    return len(module.kernel_shape)
  return 2  # Linear's kernel, Embed's table


def source_layer(name: str, module) -> SourceLayer:
  """The user's layer `module` (at `name`) as a compression source, or a one-line refusal."""
  weight = module.embedding if isinstance(module, nnx.Embed) else module.kernel
  shape, axes = tuple(weight.shape), _kernel_axes(module)
  if len(shape) > axes:
    raise _refuse(
      name,
      module,
      f"holds {'x'.join(map(str, shape[: len(shape) - axes]))} stacked kernels of shape "
      f"{shape[len(shape) - axes :]} "
      "(layers made by nnx.vmap / nnx.scan); build the blocks unstacked (a loop, nnx.List) to "
      "compress them, or leave them out of the plan",
    )
  _check_call_options(name, module)
  return READERS[type(module)](name, module)
