"""FactorizedDense: the family base of every compressed dense layer (y = x @ W + b)."""

from __future__ import annotations

import abc

import jax.numpy as jnp
from flax import nnx

from tnjax.nn.base import CompressedLayer, cast_input, layer_dtype, place_output
from tnjax.nn.spec import LayerSpec
from tnjax.tensor import execution


class FactorizedDense(CompressedLayer):
  """Base of the dense-layer family: y = x @ W + b with W (in, out) in some format.

  Every format's layer takes these arguments; the format draws its parameters in
  `_init_params`.

  Args:
    in_features: input width.
    out_features: output width.
    spec: the format and its sizes (a LayerSpec of the class's `spec_type`;
      None: its defaults).
    dtype: computation dtype (inputs and weights are cast to it); None keeps x's.
    param_dtype: dtype the parameters are stored in.
    precision: lax precision of every contraction.
    rngs: initialisation keys.
    **format_options: passed to `_init_params` (ADTN: a shared `generator`, `offset`).
  """

  family = "dense"
  adds_bias = False  # True: the format's _matmul adds the bias itself (where it is cheapest)

  def __init__(
    self,
    in_features: int,
    out_features: int,
    spec: LayerSpec | None = None,
    *,
    dtype=None,
    param_dtype=jnp.float32,
    precision=None,
    rngs: nnx.Rngs,
    **format_options,
  ):
    spec = self._check_spec(spec)
    for name, value in (("in_features", in_features), ("out_features", out_features)):
      if int(value) < 1:
        raise ValueError(f"{type(self).__name__}: {name} must be >= 1, got {value}.")
    self.in_features, self.out_features = int(in_features), int(out_features)
    self.spec = spec
    self.dtype, self.param_dtype = layer_dtype(spec, dtype), param_dtype
    self.precision = precision
    self.bias = nnx.Param(jnp.zeros((self.out_features,), param_dtype)) if spec.use_bias else None
    self.fit_error = None
    self._init_params(rngs, **format_options)

  @property
  def dense_weight_params(self) -> int:
    """Entries of the dense weight this layer replaces."""
    return self.in_features * self.out_features

  @property
  def weight_shape(self) -> tuple[int, int]:
    """The dense weight's shape: (in_features, out_features)."""
    return (self.in_features, self.out_features)

  @property
  def shape_description(self) -> str:
    return f"{self.in_features}x{self.out_features}"

  @classmethod
  def from_linear(cls, linear: nnx.Linear, spec: LayerSpec | None = None, **fit_options):
    """This format fitted to a user's nnx.Linear (kernel, bias, dtypes and precision kept)."""
    cls.check_source(linear, nnx.Linear, "from_linear")
    bias = linear.bias[...] if linear.bias is not None else None
    spec = cls.spec_for_source(spec, bias is not None, fit_options, "from_linear")
    return cls.from_dense(
      linear.kernel[...],
      bias,
      spec,
      dtype=linear.dtype,
      param_dtype=linear.param_dtype,
      precision=linear.precision,
      **fit_options,
    )

  def to_linear(self) -> nnx.Linear:
    """The plain nnx.Linear computing what this layer computes (its weight formed)."""
    linear = nnx.Linear(
      self.in_features,
      self.out_features,
      use_bias=self.bias is not None,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      precision=self.precision,
      rngs=nnx.Rngs(0),
    )
    linear.kernel[...] = self.to_dense().astype(self.param_dtype)
    if self.bias is not None:
      linear.bias[...] = self.bias[...]
    return linear

  @abc.abstractmethod
  def _matmul(self, x):
    """x @ W for x (..., in_features) in the compute dtype."""

  @classmethod
  def _for_weight(cls, weight, spec, **layer_kwargs):
    if weight.ndim != 2:
      raise ValueError(
        f"{cls.__name__}.from_dense needs a 2-D (in_features, out_features) "
        f"weight, got shape {weight.shape}."
      )
    return cls(weight.shape[0], weight.shape[1], spec, **layer_kwargs)

  def __call__(self, x, out_sharding=None):
    if x.shape[-1] != self.in_features:
      raise ValueError(
        f"{type(self).__name__} expects {self.in_features} input features, "
        f"got an input of shape {x.shape}."
      )
    x = cast_input(x, self.dtype, self.param_dtype)
    with execution.owner(id(self), x):  # format_table's 'path' column reads the choice made here
      y = self._matmul(x)
    if self.bias is not None and not self.adds_bias:
      y = y + self.bias[...].astype(y.dtype)
    return place_output(y, out_sharding)


def pad_features(x, features: int):
  """x (..., n) zero-padded on its last axis to `features` (automatic modes may pad a prime up)."""
  if x.shape[-1] == features:
    return x
  return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, features - x.shape[-1])])
