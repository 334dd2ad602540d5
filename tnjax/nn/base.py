"""What every factorised layer shares: counts, bias, registration and `from_dense`.

A format's layer class implements five things on top of tnjax.tensor's verbs:
`_init_params(rngs)` (draw its parameters; the family base owns the constructor),
`weights()` (its parameters as the format's pytree), `to_dense()`, `_fit(weight)`
(set the parameters from a dense weight with `<fmt>_from_dense`) and the forward
contraction (`_matmul` or `_conv`). `from_dense`, bias handling, the fit error,
the counts in `format_table` and the registry entry come from here.
"""

from __future__ import annotations

import abc
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnjax.nn import registry
from tnjax.nn.source_options import custom_call_options
from tnjax.nn.spec import LayerSpec, spec_from_config
from tnjax.tensor import execution


def layer_dtype(spec, dtype):
  """A layer's compute dtype: spec.dtype (a plan's or config's per-layer choice), else
  the constructor's (how a model or a source layer passes its own); None: the input's."""
  if spec.dtype is not None:
    return jnp.dtype(spec.dtype)
  return None if dtype is None else jnp.dtype(dtype)


def cast_input(x, dtype, param_dtype):
  """x in the compute dtype: `dtype`, else x's promoted with the parameters', as
  nnx.Linear / nnx.Conv do (bfloat16 inputs to float32 weights compute in float32, as
  in the source layer; integer inputs cast the weights to int and would zero them)."""
  if dtype is not None:
    return x.astype(dtype)
  return x.astype(jnp.result_type(x.dtype, param_dtype))


def place_output(y, out_sharding):
  """y resharded as `out_sharding` asks. Flax's layers take `out_sharding` (nnx attention
  passes it to its projections), so the factorised stand-ins take it too; None: as is."""
  return y if out_sharding is None else jax.sharding.reshard(y, out_sharding)


# nnx.Module's metaclass derives from abc.ABCMeta, so abc.abstractmethod members
# make a subclass that misses one fail at construction with a TypeError naming it.
class CountedModule(nnx.Module):
  """A module `format_table` lists: it stores weights that replace some dense weight."""

  bias = None

  @property
  @abc.abstractmethod
  def weight_params(self) -> int:
    """Stored weight entries (bias excluded)."""

  @property
  @abc.abstractmethod
  def dense_weight_params(self) -> int:
    """Entries of the dense weight this module replaces."""

  @property
  @abc.abstractmethod
  def shape_description(self) -> str:
    """Short text for the shape column of `format_table`."""

  @property
  def num_params(self) -> int:
    """Trainable numbers, bias included."""
    return self.weight_params + (self.bias.shape[0] if self.bias is not None else 0)

  @property
  def compression(self) -> float:
    """Dense weight entries per stored weight entry (biases excluded, as in the papers)."""
    return self.dense_weight_params / self.weight_params


class CompressedLayer(CountedModule):
  """A dense or conv layer whose weight is kept in some format.

  Subclasses set `family` (through FactorizedDense / FactorizedConv) and
  `spec_type`; defining such a class registers it in tnjax.nn.registry.
  `fit_options` names the keyword arguments of `from_dense` that go to `_fit`.
  """

  family: str = ""
  spec_type: type[LayerSpec] | None = None
  fit_options: tuple[str, ...] = ()

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    if "spec_type" in cls.__dict__:
      registry.register(cls)

  @abc.abstractmethod
  def _init_params(self, rngs: nnx.Rngs, **format_options) -> None:
    """Draws the format's parameters (the family's __init__ has set sizes and spec)."""

  @classmethod
  def as_spec(cls, spec) -> LayerSpec:
    """`spec` as this format's LayerSpec: a spec as is, a dict (its 'kind' may be left out,
    e.g. {'ranks': 4} for TTDense) through spec_from_config; None: the spec class's defaults."""
    if spec is None:
      return cls.spec_type()
    if isinstance(spec, LayerSpec):
      return spec
    if hasattr(spec, "to_dict"):
      spec = spec.to_dict()
    if isinstance(spec, dict) and cls.spec_type is not None:
      spec = {"kind": cls.spec_type.kind, **spec}
    return spec_from_config(spec)

  @classmethod
  def check_source(cls, source, expected: type, method: str) -> None:
    """from_linear / from_conv / from_embed take the NNX layer of their family only."""
    if isinstance(source, expected):
      custom = custom_call_options(source)
      if custom:
        raise ValueError(
          f"{cls.__name__}.{method}: the nnx.{expected.__name__} sets {', '.join(custom)}, "
          "which a factorised layer does not call; it cannot be converted."
        )
      return
    module, name = type(source).__module__, type(source).__name__
    linen = module.startswith("flax.linen")
    given = f"nn.{name}" if linen else f"nnx.{name}" if module.startswith("flax.nnx") else name
    raise TypeError(
      f"{cls.__name__}.{method} takes an nnx.{expected.__name__}, got {given}"
      + (
        "; compress a Linen model with tnjax.compression.compress_linen."
        if linen
        else "; each family has its own: from_linear (dense), from_conv, from_embed."
      )
    )

  @classmethod
  def spec_for_source(cls, spec, has_bias: bool, fit_options: dict, method: str) -> LayerSpec:
    """The spec of a layer replacing a user's layer in `method` (from_linear, ...): the
    source decides the bias, and only the format's fit options may come beside the spec."""
    unknown = sorted(set(fit_options) - set(cls.fit_options))
    if unknown:
      raise ValueError(
        f"{cls.__name__}.{method} takes the fit options {list(cls.fit_options)} beside the "
        f"spec, not {unknown}; sizes go in the spec, and a ratio or error target through "
        "tnjax.compress(model, {'path': {'kind': ..., 'ratio': 4}})."
      )
    spec = cls.as_spec(spec)
    return dataclasses.replace(spec, use_bias=has_bias)

  def _check_spec(self, spec: LayerSpec | None) -> LayerSpec:
    """`spec`, or the spec class's defaults when None; a spec of another format is refused."""
    spec = self.as_spec(spec)
    if self.spec_type is not None and not isinstance(spec, self.spec_type):
      raise ValueError(
        f"{type(self).__name__} takes a {self.spec_type.__name__}, got {type(spec).__name__}; "
        "build layers from any spec with tnjax.nn.make_dense / make_conv."
      )
    return spec

  @abc.abstractmethod
  def weights(self):
    """The weight as its format's pytree (e.g. a tnjax.tensor.TTMatrix)."""

  @abc.abstractmethod
  def to_dense(self):
    """The dense weight: an (in, out) matrix or an HWIO kernel."""

  @abc.abstractmethod
  def _fit(self, weight, **options) -> None:
    """Sets the weight parameters from a dense weight of this layer's shape."""

  @classmethod
  @abc.abstractmethod
  def _for_weight(cls, weight, spec: LayerSpec, **layer_kwargs) -> "CompressedLayer":
    """A new layer sized for a dense weight (the family knows the weight's layout)."""

  @classmethod
  def from_dense(cls, weight, bias=None, spec: LayerSpec | None = None, **kwargs):
    """A layer of this format fitted to a trained dense weight.

    Args:
      weight: (in, out) matrix for the dense family, HWIO kernel for the conv family.
      bias: optional (out,) bias to copy (the spec must have use_bias=True).
      spec: the layer's spec; defaults to the spec class's defaults.
      **kwargs: the format's fit options (`cls.fit_options`, e.g. `eps` for
        TT-SVD, `n_iter` for CP-ALS, `steps` for ADTN); everything else goes to
        the constructor (dtype, param_dtype, precision, rngs, strides, ...).

    Returns:
      The layer; `fit_error` holds ||to_dense() - weight|| / ||weight||.
    """
    fit = {k: kwargs.pop(k) for k in cls.fit_options if k in kwargs}
    spec = cls.as_spec(spec)
    kwargs.setdefault("rngs", nnx.Rngs(0))
    weight_array = jnp.asarray(weight)
    layer = cls._fitted_from_shapes(weight_array, bias, spec, fit, kwargs)
    if layer is None:
      layer = cls._for_weight(weight_array, spec, **kwargs)
      layer._fit(weight_array, **fit)
      layer._set_bias(bias)
    target = np.asarray(weight, np.float64)
    error = np.linalg.norm(np.asarray(layer.to_dense(), np.float64) - target)
    layer.fit_error = float(error / (np.linalg.norm(target) or 1.0))
    return layer

  @classmethod
  def _fitted_from_shapes(cls, weight, bias, spec, fit: dict, kwargs: dict):
    """The layer built as shapes only (no random init drawn: a rank search fits hundreds of
    sizes, and drawing each init compiles a random-number program for its shape), then
    fitted; None when the fit reads the init (sketches' fixed matrices, ADTN's start) or
    leaves a value of it in place."""
    # Its own Rngs (the caller's cannot be advanced inside a trace; only shapes are drawn).
    options = {k: v for k, v in kwargs.items() if k != "rngs"}
    try:
      layer = nnx.eval_shape(lambda: cls._for_weight(weight, spec, rngs=nnx.Rngs(0), **options))
    except Exception:  # pylint: disable=broad-except  # the concrete build says why
      return None
    for _, variable in nnx.to_flat_state(nnx.state(layer)):
      value = variable.get_value()
      if not isinstance(value, jax.ShapeDtypeStruct):
        return None
      variable.set_value(_Blank.of(value))
    try:
      layer._fit(weight, **fit)
      if bias is None and getattr(layer, "bias", None) is not None:
        bias = np.zeros(layer.bias.shape, layer.bias.dtype)  # a bias's init: zeros
      layer._set_bias(bias)
    except _ReadBeforeFit:
      return None
    for _, variable in nnx.to_flat_state(nnx.state(layer)):
      value = variable.get_value()
      if isinstance(value, _Blank):
        if not value.assigned:
          return None
        variable.set_value(jnp.asarray(value.view(np.ndarray)))
    return layer

  def execution_path(self, input_shape, dtype=jnp.float32) -> str:
    """'factored' or 'dense': how tnjax.tensor.execution runs this layer on inputs of `input_shape`.

    Only shapes are traced (jax.eval_shape); `spec.method` other than 'auto' is
    returned as is. Layers with a single path (dense, ADTN) give 'dense'.
    """
    with execution.record() as log:
      jax.eval_shape(self, jax.ShapeDtypeStruct(tuple(input_shape), dtype))
    return log.paths.get(id(self), "dense")

  def _set_bias(self, b):
    if b is None:
      return
    if self.bias is None:
      raise ValueError("A bias was given but the spec has use_bias=False.")
    b = jnp.asarray(b, self.param_dtype)
    if b.shape != self.bias.shape:
      raise ValueError(f"bias has shape {b.shape}, expected {self.bias.shape}.")
    self.bias[...] = b


class _ReadBeforeFit(Exception):
  """A fit read a parameter's initial value (so the layer needs its real init)."""


class _Blank(np.ndarray):
  """A parameter's place before its fit: it may be assigned whole (`param[...] = value`),
  never read; `assigned` says whether the fit set it."""

  assigned = False

  @classmethod
  def of(cls, shape_dtype) -> "_Blank":
    return np.empty(shape_dtype.shape, shape_dtype.dtype).view(cls)

  def __setitem__(self, index, value):
    if index is not Ellipsis:
      raise _ReadBeforeFit()
    np.ndarray.__setitem__(self, index, np.asarray(value))
    self.assigned = True

  def __getitem__(self, index):
    raise _ReadBeforeFit()

  def __array__(self, *args, **kwargs):
    raise _ReadBeforeFit()

  def __jax_array__(self):
    raise _ReadBeforeFit()
