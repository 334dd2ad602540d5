"""AlexNet / ZFNet and the ADTN CIFAR configs: counts, what is compressed, smoke training."""

import pytest
from flax import nnx

from tnjax.configs import (
  adtn_alexnet_cifar10,
  adtn_vgg16_cifar10,
  adtn_vgg16_cifar100,
)
from tnjax import models
from tnjax.nn import layer_rows, total_params


def _abstract(config, classes=10):
  return nnx.eval_shape(
    lambda: models.build_model(config.model, (32, 32, 3), classes, rngs=nnx.Rngs(0))
  )


def test_dense_alexnet_and_zfnet_counts_are_exact():
  def conv(k, cin, cout):  # kernel, bias, BatchNorm scale and bias
    return k * k * cin * cout + cout + 2 * cout

  fc = 4 * 4 * 256 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
  alexnet = (
    conv(5, 3, 64) + conv(5, 64, 192) + conv(3, 192, 384) + conv(3, 384, 256) + conv(3, 256, 256)
  )
  zfnet = (
    conv(7, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) + conv(3, 384, 384) + conv(3, 384, 256)
  )
  assert total_params(_abstract(adtn_alexnet_cifar10.get_config("dense"))) == alexnet + fc
  assert total_params(_abstract(adtn_alexnet_cifar10.get_config("dense,arch=zfnet"))) == zfnet + fc


@pytest.mark.parametrize(
  "module, classes, fc6_q, fc7_q",
  [
    (adtn_alexnet_cifar10, 10, 22, 20),
    (adtn_vgg16_cifar10, 10, 21, 24),
    (adtn_vgg16_cifar100, 100, 21, 24),
  ],
)
def test_adtn_cifar_configs_generate_fc6_and_fc7(module, classes, fc6_q, fc7_q):
  config = module.get_config("layers=3")
  assert config.data.name == ("cifar100" if classes == 100 else "cifar10")
  assert config.data.augment == "crop_flip" and config.data.scale == "standardize"
  rows = {r["name"]: r for r in layer_rows(_abstract(config, classes))}
  assert rows["fc6"]["kind"] == rows["fc7"]["kind"] == "adtn"
  assert rows["fc6"]["weights"] == 16 * 3 * (fc6_q - 1) + 1
  assert rows["fc7"]["weights"] == 16 * 3 * (fc7_q - 1) + 1
  assert {r["kind"] for n, r in rows.items() if n not in ("fc6", "fc7")} == {"dense"}


def test_novikov_cifar_nets_have_exact_tt_counts():
  from tnjax.configs import tt_cifar10, tt_wide_cifar10
  from tnjax.tensor import tt_num_params

  wide = {r["name"]: r for r in layer_rows(_abstract(tt_wide_cifar10.get_config()))}
  assert wide["fc1"]["weights"] == tt_num_params((4, 4, 4, 4, 4, 3), (8,) * 6, 3)
  assert wide["fc2"]["weights"] == tt_num_params((8,) * 6, (4,) * 6, 3)
  # No biases in the TT layers: each feeds a BatchNorm.
  assert wide["fc1"]["params"] == wide["fc1"]["weights"]
  assert wide["fc1"]["dense_params"] == 3072 * 262144  # never allocated
  # CIFAR-10 Quick: its own FC part 1,024 -> 64 -> 10 is the dense baseline.
  quick = _abstract(tt_cifar10.get_config("dense"))
  convs = (25 * 3 * 32 + 32) + (25 * 32 * 32 + 32) + (25 * 32 * 64 + 64)
  assert total_params(quick) == convs + (1024 * 64 + 64) + (64 * 10 + 10)
  # The TT version: 1,024 x 3,125, modes 4^5 -> 5^5, rank 8: 4,160 weights, 769x.
  fc1 = {r["name"]: r for r in layer_rows(_abstract(tt_cifar10.get_config("rank=8")))}["fc1"]
  assert fc1["weights"] == 2 * (4 * 5 * 8) + 3 * (8 * 4 * 5 * 8) == 4160
  assert round(1024 * 3125 / fc1["weights"]) == 769
