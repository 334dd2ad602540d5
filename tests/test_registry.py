"""The one layer table, and the contract every registered layer keeps (float64).

Parametrised over tnjax.nn.registry: a new format is tested the moment it registers.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import conv_reference, make_conv, make_dense, registry, spec_from_config
from tnjax.nn.base import CompressedLayer

LAYERS = sorted(registry.layers().items())


def test_the_table_holds_every_format_in_both_families():
  assert registry.kinds("dense") == ["adtn", "cp", "dense", "lowrank", "sketch", "tt"]
  assert registry.kinds("conv") == ["adtn", "cp", "dense", "sketch", "tt", "tucker"]
  with pytest.raises(ValueError, match="Layer kind 'tucker' has no dense"):
    make_dense({"kind": "tucker"}, 8, 8, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"Unknown layer kind 'tucker9'; known kinds: \['adtn'"):
    spec_from_config({"kind": "tucker9"})


def test_a_second_class_cannot_claim_a_registered_form():
  dense_class = registry.layer_class("dense", "tt")
  with pytest.raises(ValueError, match="both claim the dense form of kind 'tt'"):
    type("AnotherTT", (dense_class,), {"spec_type": dense_class.spec_type})


def _build(family, kind):
  spec = registry.layer_class(family, kind).spec_type()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # default sketch sizes may exceed these tiny layers
    if family == "dense":
      return make_dense(spec, 16, 16, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    return make_conv(spec, 16, 16, 3, rngs=nnx.Rngs(0), param_dtype=jnp.float64)


@pytest.mark.parametrize("key", [k for k, _ in LAYERS], ids=lambda k: "-".join(k))
def test_every_registered_layer_is_its_dense_weight(key, x64):
  family, kind = key
  layer = _build(family, kind)
  assert isinstance(layer, CompressedLayer) and layer.spec.kind == kind
  rng = np.random.default_rng(0)
  if family == "dense":
    x = jnp.asarray(rng.normal(size=(3, 16)))
    expected = x @ layer.to_dense()
  else:
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 16)))
    expected = conv_reference(x, layer.to_dense())
  if layer.bias is not None:
    expected = expected + layer.bias[...]
  np.testing.assert_allclose(layer(x), expected, rtol=1e-9, atol=1e-9)
  trainable = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(layer, nnx.Param)))
  assert layer.num_params == trainable
