"""What every factorised 2-D convolution shares: NHWC input, padding, bias, sizes."""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
from flax import nnx

from tnjax.nn.base import CompressedLayer, cast_input, layer_dtype, place_output
from tnjax.nn.spec import LayerSpec
from tnjax.tensor import execution


def _pair(name: str, value) -> tuple[int, int]:
  pair = (value, value) if isinstance(value, int) else tuple(value)
  if len(pair) != 2 or any(int(v) < 1 for v in pair):
    raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}.")
  return int(pair[0]), int(pair[1])


def explicit_padding(padding, input_hw, kernel_hw, strides, dilation):
  """((top, bottom), (left, right)) for 'SAME' / 'VALID' / int / explicit pairs."""
  if isinstance(padding, str):
    if padding.upper() not in ("SAME", "VALID"):
      raise ValueError(f"padding={padding!r} is unknown; use 'SAME', 'VALID', an int or pairs.")
    window = [(k - 1) * d + 1 for k, d in zip(kernel_hw, dilation)]
    return tuple(jax.lax.padtype_to_pads(input_hw, window, strides, padding.upper()))
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  pads = tuple(tuple(int(v) for v in p) for p in padding)
  if len(pads) != 2 or any(len(p) != 2 for p in pads):
    raise ValueError(f"explicit padding must be ((top, bottom), (left, right)), got {padding!r}.")
  return pads


def nhwc_conv(x, kernel_hwio, strides=(1, 1), padding="SAME", dilation=(1, 1), precision=None):
  """x (NHWC) convolved with an HWIO kernel by lax: the dense conv every conv layer of
  tnjax runs once its kernel is rebuilt, and the baseline tests compare them with."""
  pads = explicit_padding(padding, x.shape[1:3], kernel_hwio.shape[:2], strides, dilation)
  return jax.lax.conv_general_dilated(
    x,
    kernel_hwio,
    strides,
    pads,
    rhs_dilation=dilation,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    precision=precision,
  )


class FactorizedConv(CompressedLayer):
  """Base of the conv family: y = conv(x, K) + b with K (kh, kw, in, out) in some format.

  Inputs are NHWC (any number of leading batch dims); `to_dense()` is HWIO.

  Args:
    in_channels: input channels.
    out_channels: output channels.
    kernel_size: an int or (kh, kw).
    spec: the format and its sizes (a LayerSpec of the class's `spec_type`;
      None: its defaults).
    strides: an int or (sh, sw).
    padding: 'SAME', 'VALID', an int or ((top, bottom), (left, right)).
    kernel_dilation: an int or (dh, dw).
    dtype: computation dtype (inputs and weights are cast to it); None keeps x's.
    param_dtype: dtype the parameters are stored in.
    precision: lax precision of every contraction.
    rngs: initialisation keys.
    **format_options: passed to `_init_params` (ADTN: a shared `generator`, `offset`).
  """

  family = "conv"

  def __init__(
    self,
    in_channels: int,
    out_channels: int,
    kernel_size,
    spec: LayerSpec | None = None,
    *,
    strides=1,
    padding="SAME",
    kernel_dilation=1,
    dtype=None,
    param_dtype=jnp.float32,
    precision=None,
    rngs: nnx.Rngs,
    **format_options,
  ):
    spec = self._check_spec(spec)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
      if int(value) < 1:
        raise ValueError(f"{type(self).__name__}: {name} must be >= 1, got {value}.")
    self.in_channels, self.out_channels = int(in_channels), int(out_channels)
    self.kernel_size = _pair("kernel_size", kernel_size)
    self.strides = _pair("strides", strides)
    self.kernel_dilation = _pair("kernel_dilation", kernel_dilation)
    explicit_padding(padding, (1, 1), self.kernel_size, self.strides, self.kernel_dilation)
    self.padding = padding
    self.spec = spec
    self.dtype, self.param_dtype = layer_dtype(spec, dtype), param_dtype
    self.precision = precision
    self.bias = nnx.Param(jnp.zeros((self.out_channels,), param_dtype)) if spec.use_bias else None
    self.fit_error = None
    self._init_params(rngs, **format_options)

  @property
  def fan_in(self) -> int:
    return self.kernel_size[0] * self.kernel_size[1] * self.in_channels

  @property
  def fan_out(self) -> int:
    return self.kernel_size[0] * self.kernel_size[1] * self.out_channels

  @property
  def dense_weight_params(self) -> int:
    return self.fan_in * self.out_channels

  @property
  def weight_shape(self) -> tuple[int, int, int, int]:
    """The dense kernel's shape: HWIO."""
    return (*self.kernel_size, self.in_channels, self.out_channels)

  @property
  def shape_description(self) -> str:
    kh, kw = self.kernel_size
    return f"{kh}x{kw} {self.in_channels}->{self.out_channels}"

  @classmethod
  def from_conv(cls, conv: nnx.Conv, spec: LayerSpec | None = None, **fit_options):
    """This format fitted to a user's nnx.Conv (strides, padding, dilation, dtypes kept;
    grouped, input-dilated or masked convolutions are refused)."""
    from tnjax.compression.user_layers import source_layer  # pylint: disable=g-import-not-at-top

    cls.check_source(conv, nnx.Conv, "from_conv")
    source = source_layer(type(conv).__name__, conv)
    spec = cls.spec_for_source(spec, source.bias is not None, fit_options, "from_conv")
    return cls.from_dense(source.weight, source.bias, spec, **source.options, **fit_options)

  def to_conv(self) -> nnx.Conv:
    """The plain nnx.Conv computing what this layer computes (its kernel formed)."""
    conv = nnx.Conv(
      self.in_channels,
      self.out_channels,
      self.kernel_size,
      strides=self.strides,
      padding=self.padding,
      kernel_dilation=self.kernel_dilation,
      use_bias=self.bias is not None,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      precision=self.precision,
      rngs=nnx.Rngs(0),
    )
    conv.kernel[...] = self.to_dense().astype(self.param_dtype)
    if self.bias is not None:
      conv.bias[...] = self.bias[...]
    return conv

  def _conv_options(self, padding) -> dict:
    """The keyword arguments every format's `<fmt>_conv` in tnjax.tensor takes."""
    return dict(
      strides=self.strides,
      padding=padding,
      dilation=self.kernel_dilation,
      precision=self.precision,
      method=self.spec.method,
    )

  @abc.abstractmethod
  def _conv(self, x, padding):
    """conv(x, K) for NHWC x in the compute dtype with explicit `padding` pairs."""

  @classmethod
  def _for_weight(cls, weight, spec, **layer_kwargs):
    if weight.ndim != 4:
      raise ValueError(
        f"{cls.__name__}.from_dense needs an HWIO (kh, kw, in, out) kernel, "
        f"got shape {weight.shape}."
      )
    kh, kw, n_in, n_out = weight.shape
    return cls(n_in, n_out, (kh, kw), spec, **layer_kwargs)

  def _prepare(self, x):
    """Checks x, flattens its batch dims and resolves padding: (batch_shape, x, pads)."""
    if x.ndim < 3 or x.shape[-1] != self.in_channels:  # (H, W, C) alone: as nnx.Conv
      raise ValueError(
        f"{type(self).__name__} expects (..., H, W, {self.in_channels}) inputs, "
        f"got shape {x.shape}."
      )
    batch_shape = x.shape[:-3]
    x = cast_input(x.reshape((-1,) + x.shape[-3:]), self.dtype, self.param_dtype)
    pads = explicit_padding(
      self.padding, x.shape[1:3], self.kernel_size, self.strides, self.kernel_dilation
    )
    return batch_shape, x, pads

  def __call__(self, x, out_sharding=None):
    batch_shape, x, pads = self._prepare(x)
    with execution.owner(id(self), x):  # format_table's 'path' column reads the choice made here
      y = self._conv(x, pads)
    if self.bias is not None:
      y = y + self.bias[...].astype(y.dtype)
    return place_output(y.reshape(batch_shape + y.shape[1:]), out_sharding)
