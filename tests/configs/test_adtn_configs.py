"""The ADTN MNIST configs: what they compress, and smoke training under tfds mock."""

from flax import nnx

from tnjax.configs import adtn_fc2_mnist, adtn_lenet5_mnist
from tnjax import models
from tnjax.nn import ADTNConv, ADTNDense, layer_rows, total_params


def test_adtn_configs_compress_the_named_layers_with_the_formula_counts():
  fc2 = models.build_model(adtn_fc2_mnist.get_config().model, (32, 32, 1), 10, rngs=nnx.Rngs(0))
  # The study's best setting is the default: M = 8, ReLU, Adam 1e-2, 20 epochs.
  assert isinstance(fc2.hidden, ADTNDense) and fc2.hidden.weight_params == 16 * 8 * 19 + 1
  assert fc2.hidden.shape_description == "1024x1024 ADTN Q=20 M=8 relu"
  config = adtn_fc2_mnist.get_config()
  assert (config.schedule.learning_rate, config.num_epochs) == (1e-2, 20)
  # LeNet-5's study chose M = 8 ReLU, Adam 3e-3, 20 epochs too.
  config = adtn_lenet5_mnist.get_config()
  assert (config.schedule.learning_rate, config.num_epochs) == (3e-3, 20)
  assert {spec["layers"] for spec in config.model.layers.values()} == {8}
  lenet = models.build_model(
    adtn_lenet5_mnist.get_config("layers=3").model, (28, 28, 1), 10, rngs=nnx.Rngs(0)
  )
  assert isinstance(lenet.conv2, ADTNConv) and isinstance(lenet.fc1, ADTNDense)
  # Q = ceil(log2(weights)): conv2 2,400 -> 12, fc1 48,000 -> 16, fc2 10,080 -> 14.
  assert [lenet.conv2.weight_params, lenet.fc1.weight_params, lenet.fc2.weight_params] == [
    16 * 3 * 11 + 1,
    16 * 3 * 15 + 1,
    16 * 3 * 13 + 1,
  ]
  dense = models.build_model(
    adtn_lenet5_mnist.get_config("dense").model, (28, 28, 1), 10, rngs=nnx.Rngs(0)
  )
  assert total_params(dense) == 61706
  study = [p["model.layers.hidden"] for p in adtn_fc2_mnist.sweep()]
  assert [(s.get("nonlinearity"), s.get("layers")) for s in study] == [
    (nl, m) for nl in ("identity", "relu") for m in (2, 4, 8)
  ] + [(None, None)]
  assert len(adtn_lenet5_mnist.sweep()) == 7


def test_scan_argument_scans_every_adtn_layer_of_each_config():
  from tnjax.configs import adtn_alexnet_cifar10, adtn_vgg16_cifar10, adtn_vgg16_cifar100

  for module in (
    adtn_fc2_mnist,
    adtn_lenet5_mnist,
    adtn_alexnet_cifar10,
    adtn_vgg16_cifar10,
    adtn_vgg16_cifar100,
  ):
    scanned = module.get_config("scan").model.layers
    assert scanned and all(spec["scan_layers"] for spec in scanned.values()), module.__name__
    assert all("scan_layers" not in spec for spec in module.get_config().model.layers.values())


def test_vgg16_conv_variant_and_shared_generators_have_the_formula_counts():
  from tnjax.configs import adtn_vgg16_cifar10

  def compressed_weights(arg):
    model = nnx.eval_shape(
      lambda: models.build_model(
        adtn_vgg16_cifar10.get_config(arg).model, (32, 32, 3), 10, rngs=nnx.Rngs(0)
      )
    )
    return sum(r["weights"] for r in layer_rows(model) if r["kind"] != "dense")

  # Three 3x3 512 -> 512 convs (2,359,296 weights, Q = 22), each its own ADTN at M = 2.
  assert compressed_weights("target=conv") == 3 * (16 * 2 * 21 + 1) == 2019
  # One shared generator (Q = 23 for 7,077,888) and one scale per layer.
  assert compressed_weights("target=conv,share") == 16 * 2 * 22 + 3 == 707
  assert compressed_weights("target=conv,share,layers=1") == 16 * 22 + 3 == 355


def test_the_shallow_comparison_holds_about_the_deep_adtns_weights():
  from tnjax.sweeps.points import sweep_points

  points = sweep_points(adtn_fc2_mnist, arg="fashion_idx,shallow")
  counts = []
  for point in points[:3]:
    config = adtn_fc2_mnist.get_config("shallow")
    config.model.layers.hidden = point["model.layers.hidden"]
    model = models.build_model(config.model, (32, 32, 1), 10, rngs=nnx.Rngs(0))
    counts.append(model.hidden.weight_params)
  assert counts == [16 * 4 * 19 + 1, 32 * 3 + 128 * 9, 8 * (16 + 64 + 64 + 16)]
  assert max(counts) / min(counts) < 1.06  # the baselines never smaller than the ADTN
  assert points[-1]["model.layers.hidden"] == {"kind": "dense"}
  assert len(sweep_points(adtn_fc2_mnist)) == 7  # the study without the argument
