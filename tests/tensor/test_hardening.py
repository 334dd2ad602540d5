"""Bad input to the decompositions and specs: one clear error or warning, never a hang."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import make_conv, make_dense
from tnjax.tensor import cp, lowrank, tt, tucker


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_decompositions_refuse_non_finite_weights_instead_of_hanging(bad):
  weight = np.ones((16, 16))
  weight[3, 5] = bad
  kernel = np.ones((3, 3, 4, 4))
  kernel[0, 1, 2, 3] = bad
  with pytest.raises(ValueError, match="tt_from_dense: W holds .* entries"):
    tt.tt_from_dense(weight, (4, 4), (4, 4), max_rank=2)
  with pytest.raises(ValueError, match="cp_als: the tensor holds"):
    cp.cp_als(kernel, 2)
  with pytest.raises(ValueError, match="lowrank_from_dense: W holds"):
    lowrank.lowrank_from_dense(weight, 2)
  with pytest.raises(ValueError, match="tucker2_from_dense: the kernel holds"):
    tucker.tucker2_from_dense(kernel, 2, 2)


def test_tt_svd_with_eps_of_an_all_zero_weight_has_rank_one():
  w = tt.tt_from_dense(np.zeros((16, 16)), (4, 4), (4, 4), eps=1e-3)
  assert w.ranks == (1, 1, 1)
  np.testing.assert_array_equal(tt.tt_to_dense(w), np.zeros((16, 16)))


@pytest.mark.parametrize(
  "family, spec, field",
  [
    ("dense", {"kind": "tt", "ranks": 2.5}, "TTSpec.ranks"),
    ("dense", {"kind": "tt", "ranks": (2, 2.0)}, "TTSpec.ranks"),
    ("dense", {"kind": "lowrank", "rank": 2.5}, "LowRankSpec.rank"),
    ("dense", {"kind": "cp", "rank": 2.0}, "CPSpec.rank"),
    ("dense", {"kind": "sketch", "sketch_size": 2.5}, "SketchSpec.sketch_size"),
    ("dense", {"kind": "adtn", "layers": True}, "ADTNSpec.layers"),
    ("conv", {"kind": "tucker", "in_rank": 1.5, "out_rank": 2}, "TuckerSpec.in_rank"),
  ],
)
def test_non_integer_ranks_and_sizes_get_one_line_errors(family, spec, field):
  build = make_dense if family == "dense" else make_conv
  args = (64, 32) if family == "dense" else (8, 8, 3)
  with pytest.raises(ValueError, match=f"{field} must be a whole number"):
    build(spec, *args, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="CP rank must be an int"):
    cp.cp_als(np.ones((3, 3)), 2.0)


def test_sketches_need_at_least_one_pair():
  with pytest.raises(ValueError, match="num_sketches must be >= 1"):
    make_dense({"kind": "sketch", "sketch_size": 4, "num_sketches": 0}, 64, 32, rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
  "spec",
  [
    {"kind": "tt", "ranks": 4},
    {"kind": "lowrank", "rank": 4},
    {"kind": "cp", "rank": 3},
    {"kind": "sketch", "sketch_size": 4},
    {"kind": "adtn"},
    {"kind": "dense"},
  ],
)
def test_an_empty_batch_gives_an_empty_output(spec):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    layer = make_dense(spec, 64, 32, rngs=nnx.Rngs(0))
  assert layer(jnp.zeros((0, 64))).shape == (0, 32)


def test_a_low_rank_layer_above_full_rank_warns():
  with pytest.warns(UserWarning, match="rank=12 exceeds min\\(8, 10\\)"):
    make_dense({"kind": "lowrank", "rank": 12}, 8, 10, rngs=nnx.Rngs(0))
