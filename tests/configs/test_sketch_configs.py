"""LeNet-5, SmallCNN and the sketch configs: counts, matched baselines, smoke training."""

import jax
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from tnjax.configs import sketch_cifar10, sketch_common, sketch_mnist
from tnjax import models, trainer
from tnjax.nn import (SketchConv, SketchDense, TTDense, TuckerConv, make_conv, make_dense,
                      total_params)


def test_dense_lenet5_and_small_cnn_parameter_counts_are_exact():
  lenet = models.build_model({"name": "lenet5"}, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  # conv1 5*5*1*6+6, conv2 5*5*6*16+16, fc1 400*120+120, fc2 120*84+84, output 84*10+10
  assert total_params(lenet) == 156 + 2416 + 48120 + 10164 + 850 == 61706
  cnn = nnx.eval_shape(lambda: models.build_model({"name": "small_cnn"}, (32, 32, 3), 10,
                                                  rngs=nnx.Rngs(0)))
  convs = (3 * 3 * 3 * 32 + 32) + (9 * 32 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 64 + 64)
  assert total_params(cnn) == convs + (2304 * 512 + 512) + (512 * 10 + 10) == 1250858


def test_per_layer_overrides_pick_each_layers_format_and_unknown_names_are_refused():
  layers = sketch_mnist.get_config("method=tucker_tt,k=8").model.layers.to_dict()
  net = models.build_model({"name": "lenet5", "layers": layers}, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  assert (type(net.conv2), type(net.fc1), type(net.fc2)) == (TuckerConv, TTDense, TTDense)
  assert type(net.conv1).__name__ == "Conv" and type(net.output).__name__ == "Dense"
  with pytest.raises(ValueError, match=r"names \['fc9'\], which are not layers of this model"):
    models.build_model({"name": "lenet5", "layers": {"fc9": {"kind": "tt"}}}, (28, 28, 1), 10,
                       rngs=nnx.Rngs(0))


@pytest.mark.parametrize("config_module", [sketch_mnist, sketch_cifar10])
def test_sweeps_pair_each_sketch_with_a_baseline_of_matched_size(config_module):
  points = config_module.sweep()
  assert len(points) == 2 * len(config_module.RATES) + 1 and points[-1] == {"model.layers": {}}
  dims = config_module.LAYER_DIMS
  sizes = []
  for sketch_point, baseline_point in zip(points[0:-1:2], points[1:-1:2]):
    sketch_specs, baseline_specs = sketch_point["model.layers"], baseline_point["model.layers"]
    assert {s["kind"] for s in sketch_specs.values()} == {"sketch"}
    assert {s["kind"] for s in baseline_specs.values()} == {"tucker", "tt"}
    sketch_total = sketch_common.total_weight_params(dims, sketch_specs)
    baseline_total = sketch_common.total_weight_params(dims, baseline_specs)
    assert abs(baseline_total - sketch_total) <= 0.15 * sketch_total
    sizes.append(sketch_total)
  dense_total = sketch_common.total_weight_params(dims, {})
  assert sizes == sorted(sizes) and sizes[-1] < dense_total / 3  # 3 distinct compression rates


def test_sketch_mnist_counts_follow_the_paper_formulas():
  layers = sketch_mnist.get_config("k=8,conv_k=2").model.layers.to_dict()
  net = models.build_model({"name": "lenet5", "layers": layers}, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  assert isinstance(net.conv2, SketchConv) and isinstance(net.fc1, SketchDense)
  assert net.conv2.weight_params == 1 * 2 * 5 * 5 * (6 + 16)  # l k d2 d3 (d1 + d4)
  assert net.fc1.weight_params == 1 * 8 * (400 + 120)         # l k (d1 + d2)
  assert net.fc2.weight_params == 1 * 8 * (120 + 84)




def test_closed_form_counts_used_for_matching_equal_the_built_layers():
  for family, dims, spec in [("conv", (3, 3, 32, 64), {"kind": "tucker", "in_rank": 11, "out_rank": 19}),
                             ("dense", (2304, 512), {"kind": "tt", "ranks": 26, "order": 3}),
                             ("dense", (400, 120), {"kind": "tt", "ranks": 64, "order": 3})]:
    if family == "conv":
      layer = nnx.eval_shape(lambda: make_conv(spec, dims[2], dims[3], dims[:2], rngs=nnx.Rngs(0)))
    else:
      layer = nnx.eval_shape(lambda: make_dense(spec, *dims, rngs=nnx.Rngs(0)))
    assert sketch_common.weight_params(family, dims, spec) == layer.weight_params
