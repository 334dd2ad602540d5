"""bfloat16 compute with float32 parameters: every layer, bounded error, float32 gradients."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax import models
from tnjax.nn import make_conv, make_dense, registry

LAYERS = sorted(k for k in registry.layers() if k[0] in ("dense", "conv"))  # embed: ids in


def _build(family, kind, **kwargs):
  spec = registry.layer_class(family, kind).spec_type()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # default sketch sizes may exceed these small layers
    if family == "dense":
      return make_dense(spec, 64, 48, rngs=nnx.Rngs(0), **kwargs)
    return make_conv(spec, 16, 24, 3, rngs=nnx.Rngs(0), **kwargs)


def _jitted_forward(layer):
  graphdef, state = nnx.split(layer)
  return jax.jit(lambda x: nnx.merge(graphdef, state)(x))


def _gradients(layer, x):
  graphdef, params, rest = nnx.split(layer, nnx.Param, ...)
  loss = lambda p: jnp.sum(nnx.merge(graphdef, p, rest)(x).astype(jnp.float32) ** 2)
  return jax.jit(jax.grad(loss))(params)


def _relative_error(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("key", LAYERS, ids=lambda k: "-".join(k))
def test_bfloat16_layer_stays_within_a_few_bf16_ulps_of_float32(key):
  family, kind = key
  full = _build(family, kind)
  half = _build(family, kind, dtype=jnp.bfloat16)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(8, 64) if family == "dense" else (2, 10, 10, 16)), jnp.float32)
  # Jitted: eagerly every op of the layer would compile on its own (seconds per layer).
  y_full, y_half = _jitted_forward(full)(x), _jitted_forward(half)(x)
  assert y_half.dtype == jnp.bfloat16 and y_full.dtype == jnp.float32
  # bf16 keeps 8 significand bits (ulp 2^-8 = 0.4%); contractions of a few hundred
  # terms with float32 accumulation stay within about 1%. A float32-to-bf16 cast of
  # the output alone is 0.2%.
  assert _relative_error(y_half, y_full) < 0.02
  params = nnx.state(half, nnx.Param)
  assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  grads, grads_f = _gradients(half, x), _gradients(full, x)
  assert {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype(jnp.float32)}
  for g_half, g_full in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_f)):
    assert _relative_error(g_half, g_full) < 0.05


def test_model_dtype_reaches_every_layer_and_a_spec_can_opt_out():
  model = models.build_model(
    {
      "name": "lenet5",
      "conv_layer": {"kind": "cp", "rank": 4},
      "layers": {"fc1": {"kind": "tt", "ranks": 4, "dtype": "float32"}},
    },
    (28, 28, 1),
    10,
    rngs=nnx.Rngs(0),
    dtype="bfloat16",
  )
  assert model.conv1.dtype == jnp.bfloat16 and model.output.dtype == jnp.bfloat16
  assert model.fc1.dtype == jnp.float32
  images = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
  assert jax.eval_shape(model, images).dtype == jnp.bfloat16
  float32 = models.build_model({"name": "lenet5"}, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  assert float32.conv1.dtype is None and jax.eval_shape(float32, images).dtype == jnp.float32


def test_unknown_dtypes_fail_with_one_line():
  with pytest.raises(ValueError, match=r"config.dtype='bf16' is unknown; choose one of"):
    models.build_model({"name": "fc2"}, (28, 28, 1), 10, rngs=nnx.Rngs(0), dtype="bf16")
  with pytest.raises(ValueError, match=r"TTSpec.dtype='half' is unknown"):
    make_dense({"kind": "tt", "dtype": "half"}, 8, 8, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("family, kind", LAYERS, ids=lambda k: str(k))
def test_inputs_are_promoted_with_the_parameters_as_nnx_layers_promote_them(family, kind):
  layer = _build(family, kind)
  shape = (2, 64) if family == "dense" else (2, 6, 6, 16)
  values = np.random.default_rng(0).integers(-3, 4, size=shape)
  reference = layer(jnp.asarray(values, jnp.float32))
  # nnx.Linear(dtype=None) computes a bfloat16 input with float32 weights in float32;
  # casting the weights to an integer input's dtype would zero them.
  assert nnx.Linear(4, 2, rngs=nnx.Rngs(0))(jnp.ones((1, 4), jnp.bfloat16)).dtype == jnp.float32
  for dtype in (jnp.int32, jnp.bfloat16):
    y = layer(jnp.asarray(values, dtype))  # small integers: exact in bfloat16 too
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y, reference)
  assert float(jnp.abs(reference).max()) > 0


def test_a_specs_dtype_sets_the_compute_dtype_however_the_layer_is_built():
  from tnjax.nn import LowRankDense, LowRankSpec  # pylint: disable=g-import-not-at-top

  spec = LowRankSpec(rank=4, dtype="bfloat16")
  x = jnp.ones((2, 16))
  linear = nnx.Linear(16, 8, rngs=nnx.Rngs(0))
  for layer in (
    LowRankDense(16, 8, spec, rngs=nnx.Rngs(0)),
    LowRankDense.from_linear(linear, spec),
    make_dense(spec, 16, 8, rngs=nnx.Rngs(0)),
    LowRankDense(16, 8, spec, dtype=jnp.float32, rngs=nnx.Rngs(0)),  # the spec wins
  ):
    assert layer(x).dtype == jnp.bfloat16
