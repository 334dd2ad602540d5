"""The one layer table, and the contract every registered layer keeps (float64).

Parametrised over tnjax.nn.registry: a new format is tested the moment it registers.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import nhwc_conv, make_conv, make_dense, registry, spec_from_config
from tnjax.nn.base import CompressedLayer

# The dense and conv families (the embedding family has its own contract: test_embed.py).
LAYERS = sorted((k, v) for k, v in registry.layers().items() if k[0] in ("dense", "conv"))


def test_the_table_holds_every_format_in_each_family():
  assert registry.kinds("dense") == ["adtn", "btt", "cp", "dense", "lowrank", "sketch", "tt"]
  assert registry.kinds("conv") == ["adtn", "cp", "dense", "sketch", "tt", "tucker"]
  assert registry.kinds("embed") == ["dense", "tt_embedding"]
  with pytest.raises(ValueError, match="Layer kind 'tucker' has no dense"):
    make_dense({"kind": "tucker"}, 8, 8, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"Unknown layer kind 'tucker9'; known kinds: \['adtn'"):
    spec_from_config({"kind": "tucker9"})


def test_a_second_class_cannot_claim_a_registered_form():
  dense_class = registry.layer_class("dense", "tt")
  with pytest.raises(ValueError, match="both claim the dense form of kind 'tt'"):
    type("AnotherTT", (dense_class,), {"spec_type": dense_class.spec_type})


def _build(family, kind, method="auto"):
  spec = registry.layer_class(family, kind).spec_type(method=method)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # default sketch sizes may exceed these tiny layers
    if family == "dense":
      return make_dense(spec, 16, 16, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    return make_conv(spec, 16, 16, 3, rngs=nnx.Rngs(0), param_dtype=jnp.float64)


# Every execution path of every layer (tnjax.tensor.execution): the factored chain and the
# rebuilt weight. Dense layers and ADTN (generate, then one GEMM) have only 'dense'.
SINGLE_PATH = ("dense", "adtn")
PATHS = [
  (key, method)
  for key, _ in LAYERS
  for method in (("dense",) if key[1] in SINGLE_PATH else ("factored", "dense"))
]
PATH_IDS = ["-".join(key) + "-" + method for key, method in PATHS]


@pytest.mark.parametrize("key, method", PATHS, ids=PATH_IDS)
def test_every_path_of_every_layer_is_its_dense_weight(key, method, x64):
  family, kind = key
  layer = _build(family, kind, method)
  assert isinstance(layer, CompressedLayer) and layer.spec.kind == kind
  rng = np.random.default_rng(0)
  if family == "dense":
    x = jnp.asarray(rng.normal(size=(3, 16)))
    expected = x @ layer.to_dense()
  else:
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 16)))
    expected = nhwc_conv(x, layer.to_dense())
  if layer.bias is not None:
    expected = expected + layer.bias[...]
  np.testing.assert_allclose(layer(x), expected, rtol=1e-9, atol=1e-9)
  assert layer.execution_path(x.shape, x.dtype) == method
  trainable = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(layer, nnx.Param)))
  assert layer.num_params == trainable


# Specs at which from_dense reproduces a 16x16 weight / 3x3x16x16 kernel exactly. A new
# exact format must be added here; formats that only estimate the weight go in ESTIMATES.
FULL_RANK = {
  "btt": {"kind": "btt", "rank": 4},  # 16 = 4x4: each (4, 4) block at rank 4
  "dense": {"kind": "dense"},
  "tt": {"kind": "tt", "ranks": 256, "order": 2},
  "lowrank": {"kind": "lowrank", "rank": 16},
  "cp": {"kind": "cp", "rank": 64, "order": 2},
  "tucker": {"kind": "tucker", "in_rank": 16, "out_rank": 16},
}
ESTIMATES = {  # unbiased sketches, and a generator fitted by gradient descent
  "sketch": ({"kind": "sketch", "sketch_size": 16, "num_sketches": 8}, {}),
  "adtn": ({"kind": "adtn", "layers": 2}, {"steps": 60, "learning_rate": 3e-2}),
}


def _dense_weight(family, seed=1):
  shape = (16, 16) if family == "dense" else (3, 3, 16, 16)
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape))


@pytest.mark.parametrize("key", [k for k, _ in LAYERS], ids=lambda k: "-".join(k))
def test_from_dense_round_trips_at_full_rank_and_reports_its_error(key, x64):
  family, kind = key
  layer_class = registry.layer_class(family, kind)
  weight = _dense_weight(family)
  assert kind in FULL_RANK or kind in ESTIMATES, f"add {kind!r} to FULL_RANK or ESTIMATES"
  spec, options = (FULL_RANK[kind], {}) if kind in FULL_RANK else ESTIMATES[kind]
  if family == "conv" and kind == "cp":
    spec = {"kind": "cp", "rank": 300}  # a 3x3x16x16 kernel needs more terms than its matrix
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # clipped TT ranks, sketches larger than the layer
    layer = layer_class.from_dense(
      weight, jnp.arange(16.0), spec_from_config(spec), param_dtype=jnp.float64, **options
    )
  error = np.linalg.norm(np.asarray(layer.to_dense()) - np.asarray(weight)) / np.linalg.norm(weight)
  assert layer.fit_error == pytest.approx(error, rel=1e-9, abs=1e-12)
  np.testing.assert_array_equal(layer.bias[...], np.arange(16.0))
  if kind in FULL_RANK:
    assert error < 1e-6
  else:
    assert error < 1.0  # an estimate, not a copy, but closer than a zero weight


@pytest.mark.parametrize("key, method", PATHS, ids=PATH_IDS)
def test_gradients_of_every_path_equal_finite_differences(key, method, x64, finite_differences):
  family, kind = key
  layer = _build(family, kind, method)
  x = jnp.asarray(
    np.random.default_rng(2).normal(size=(2, 16) if family == "dense" else (1, 5, 5, 16))
  )
  graphdef, params, rest = nnx.split(layer, nnx.Param, ...)
  analytic, numeric = finite_differences(
    lambda p: jnp.sum(jnp.sin(nnx.merge(graphdef, p, rest)(x))), params
  )
  assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("kind", SINGLE_PATH)
def test_single_path_formats_refuse_the_factored_method(kind):
  spec_class = registry.layer_class("dense", kind).spec_type
  with pytest.raises(ValueError, match="method='factored' is not a path of"):
    spec_class(method="factored")
