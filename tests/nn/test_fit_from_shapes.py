"""from_dense skips drawing a random init that the fit overwrites: the layer it returns equals,
array for array, the one built with its init and then fitted; formats whose fit reads the
init (sketches' fixed matrices) still draw it."""

import jax
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import registry, spec_from_config

WEIGHTS = {"dense": (48, 40), "conv": (3, 3, 8, 12)}
SPECS = {
  ("dense", "lowrank"): {"rank": 4},
  ("dense", "tt"): {"ranks": 3},
  ("dense", "cp"): {"rank": 3},
  ("conv", "tucker"): {"in_rank": 3, "out_rank": 4},
  ("conv", "cp"): {"rank": 4},
  ("conv", "tt"): {"ranks": 3},
  ("dense", "sketch"): {},
  ("conv", "sketch"): {},
}


@pytest.mark.parametrize("family, kind", sorted(SPECS))
def test_the_shapes_only_build_equals_the_initialised_one(family, kind):
  cls = registry.layer_class(family, kind)
  weight = np.random.default_rng(0).normal(size=WEIGHTS[family]).astype(np.float32)
  bias = np.arange(weight.shape[-1], dtype=np.float32)
  spec = spec_from_config({"kind": kind, **SPECS[(family, kind)]})
  for b in (None, bias):
    quick = cls._fitted_from_shapes(weight, b, spec, {}, {})
    built = cls._for_weight(weight, spec, rngs=nnx.Rngs(0))
    built._fit(weight)
    built._set_bias(b)
    if kind == "sketch":  # its fit reads the sketch matrices its init draws
      assert quick is None
      continue
    flat = lambda layer: jax.tree.leaves(nnx.state(layer))  # noqa: E731
    assert len(flat(quick)) == len(flat(built))
    for a, c in zip(flat(quick), flat(built)):
      assert isinstance(a, jax.Array) and a.dtype == c.dtype
      np.testing.assert_array_equal(a, c)
