"""LeNet-5, SmallCNN and the sketch configs: counts, matched baselines, smoke training."""

import pytest
from flax import nnx

from tnjax.configs import sketch_cifar10, sketch_common, sketch_mnist
from tnjax import models
from tnjax.nn import (
  SketchConv,
  SketchDense,
  TTDense,
  TuckerConv,
  make_conv,
  make_dense,
  total_params,
)


def test_dense_lenet5_and_small_cnn_parameter_counts_are_exact():
  lenet = models.build_model({"name": "lenet5"}, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  # conv1 5*5*1*6+6, conv2 5*5*6*16+16, fc1 400*120+120, fc2 120*84+84, output 84*10+10
  assert total_params(lenet) == 156 + 2416 + 48120 + 10164 + 850 == 61706
  cnn = nnx.eval_shape(
    lambda: models.build_model({"name": "small_cnn"}, (32, 32, 3), 10, rngs=nnx.Rngs(0))
  )
  convs = (3 * 3 * 3 * 32 + 32) + (9 * 32 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 64 + 64)
  assert total_params(cnn) == convs + (2304 * 512 + 512) + (512 * 10 + 10) == 1250858


def test_per_layer_overrides_pick_each_layers_format_and_unknown_names_are_refused():
  layers = sketch_mnist.get_config("method=tucker_tt,k=8").model.layers.to_dict()
  net = models.build_model({"name": "lenet5", "layers": layers}, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  assert (type(net.conv2), type(net.fc1), type(net.fc2)) == (TuckerConv, TTDense, TTDense)
  assert type(net.conv1).__name__ == "Conv" and type(net.output).__name__ == "Dense"
  with pytest.raises(ValueError, match=r"names \['fc9'\], which are not layers of this model"):
    models.build_model(
      {"name": "lenet5", "layers": {"fc9": {"kind": "tt"}}}, (28, 28, 1), 10, rngs=nnx.Rngs(0)
    )


@pytest.mark.parametrize("config_module", [sketch_mnist, sketch_cifar10])
def test_sweeps_pair_each_sketch_with_a_baseline_of_at_least_its_weights(config_module):
  points = [p["model.layers"] for p in config_module.sweep()]
  assert points[-1] == {}
  dims = config_module.LAYER_DIMS

  def total(specs):  # the compressed layers only (conv-only points leave the FCs dense)
    return sketch_common.total_weight_params({n: dims[n] for n in specs}, specs)

  pairs = [
    (a, b)
    for a, b in zip(points, points[1:])
    if a
    and b
    and {s["kind"] for s in a.values()} == {"sketch"}
    and {s["kind"] for s in b.values()} != {"sketch"}
  ]
  for sketches, baseline in pairs:
    assert set(sketches) == set(baseline)
    # Never fewer weights than the sketch; as few more as the discrete ranks allow (< 3%).
    assert total(sketches) <= total(baseline) <= 1.03 * total(sketches)
  conv_only = [b for _, b in pairs if all(dims[n][0] == "conv" for n in b)]
  assert conv_only and {s["kind"] for b in conv_only for s in b.values()} == {"tucker"}
  full = [b for _, b in pairs if b not in conv_only]
  assert len(full) == len(config_module.RATES)
  assert all({s["kind"] for s in b.values()} == {"tucker", "tt"} for b in full)
  # Sketch counts l = 1, 2, 4 at one budget: l k is fixed, so are the weights.
  by_l = {}
  for specs in points:
    kinds = {(s["kind"], s.get("num_sketches", 1)) for s in specs.values()}
    if len(kinds) == 1 and next(iter(kinds))[0] == "sketch" and len(specs) == len(dims):
      by_l.setdefault(next(iter(kinds))[1], set()).add(total(specs))
  assert set(by_l) == {1, 2, 4} and len(by_l[2] & by_l[4] & by_l[1]) == 1


def test_sketch_mnist_counts_follow_the_paper_formulas():
  layers = sketch_mnist.get_config("k=8,conv_k=2").model.layers.to_dict()
  net = models.build_model({"name": "lenet5", "layers": layers}, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  assert isinstance(net.conv2, SketchConv) and isinstance(net.fc1, SketchDense)
  assert net.conv2.weight_params == 1 * 2 * 5 * 5 * (6 + 16)  # l k d2 d3 (d1 + d4)
  assert net.fc1.weight_params == 1 * 8 * (400 + 120)  # l k (d1 + d2)
  assert net.fc2.weight_params == 1 * 8 * (120 + 84)


def test_closed_form_counts_used_for_matching_equal_the_built_layers():
  for family, dims, spec in [
    ("conv", (3, 3, 32, 64), {"kind": "tucker", "in_rank": 11, "out_rank": 19}),
    ("dense", (2304, 512), {"kind": "tt", "ranks": 26, "order": 3}),
    ("dense", (400, 120), {"kind": "tt", "ranks": 64, "order": 3}),
  ]:
    if family == "conv":
      layer = nnx.eval_shape(lambda: make_conv(spec, dims[2], dims[3], dims[:2], rngs=nnx.Rngs(0)))
    else:
      layer = nnx.eval_shape(lambda: make_dense(spec, *dims, rngs=nnx.Rngs(0)))
    assert sketch_common.weight_params(family, dims, spec) == layer.weight_params
