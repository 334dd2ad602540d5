"""What every factorised dense layer shares: bias, sizes and compression."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from tnjax.nn import registry
from tnjax.nn.spec import LayerSpec


class CompressedLayer(nnx.Module):
  """Sizes and bias handling shared by the dense and conv families.

  Subclasses set `self.bias` (an nnx.Param or None) and implement
  `weight_params` and `dense_weight_params`. A class that sets `spec_type`
  registers itself in tnjax.nn.registry under its family and its spec's kind.
  """

  family: str = ""
  spec_type: type[LayerSpec] | None = None

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    if "spec_type" in cls.__dict__:
      registry.register(cls)

  @property
  def weight_params(self) -> int:
    raise NotImplementedError

  @property
  def dense_weight_params(self) -> int:
    raise NotImplementedError

  @property
  def num_params(self) -> int:
    """Trainable numbers, bias included."""
    return self.weight_params + (self.bias.shape[0] if self.bias is not None else 0)

  @property
  def compression(self) -> float:
    """Dense weight entries per stored weight entry (biases excluded, as in the papers)."""
    return self.dense_weight_params / self.weight_params

  def _set_bias(self, b):
    if b is None:
      return
    if self.bias is None:
      raise ValueError("A bias was given but the spec has use_bias=False.")
    b = jnp.asarray(b, self.param_dtype)
    if b.shape != self.bias.shape:
      raise ValueError(f"bias has shape {b.shape}, expected {self.bias.shape}.")
    self.bias[...] = b


class FactorizedDense(CompressedLayer):
  """Base of the dense-layer family: y = x @ W + b with W in some format.

  Subclasses set the weight parameters and implement `weight_params`,
  `to_dense` and `_matmul`.
  """

  family = "dense"

  def __init__(self, in_features: int, out_features: int, spec: LayerSpec, *,
               dtype=None, param_dtype=jnp.float32, precision=None, rngs: nnx.Rngs):
    for name, value in (("in_features", in_features), ("out_features", out_features)):
      if int(value) < 1:
        raise ValueError(f"{type(self).__name__}: {name} must be >= 1, got {value}.")
    self.in_features, self.out_features = int(in_features), int(out_features)
    self.spec = spec
    self.dtype, self.param_dtype, self.precision = dtype, param_dtype, precision
    self.bias = nnx.Param(jnp.zeros((self.out_features,), param_dtype)) if spec.use_bias else None

  @property
  def dense_weight_params(self) -> int:
    """Entries of the dense weight this layer replaces."""
    return self.in_features * self.out_features

  @property
  def shape_description(self) -> str:
    return f"{self.in_features}x{self.out_features}"

  # --- forward ---------------------------------------------------------------
  def _matmul(self, x):
    raise NotImplementedError

  def to_dense(self):
    """The (in_features, out_features) weight this layer represents."""
    raise NotImplementedError

  def __call__(self, x):
    if x.shape[-1] != self.in_features:
      raise ValueError(f"{type(self).__name__} expects {self.in_features} input features, "
                       f"got an input of shape {x.shape}.")
    if self.dtype is not None:
      x = x.astype(self.dtype)
    y = self._matmul(x)
    if self.bias is not None:
      y = y + self.bias[...].astype(y.dtype)
    return y


def check_dense_weight(W, in_features: int | None = None, out_features: int | None = None):
  """Validates a dense weight passed to `from_dense` and returns its sizes."""
  W = jnp.asarray(W)
  if W.ndim != 2:
    raise ValueError(f"from_dense needs a 2-D (in_features, out_features) weight, got shape {W.shape}.")
  return W, W.shape[0], W.shape[1]
