"""The ADTN MNIST configs: what they compress, and smoke training under tfds mock."""

import pytest
import tensorflow_datasets as tfds
from flax import nnx

from tnjax.configs import adtn_fc2_mnist, adtn_lenet5_mnist
from tnjax import models, trainer
from tnjax.nn import ADTNConv, ADTNDense, total_params


def test_adtn_configs_compress_the_named_layers_with_the_formula_counts():
  fc2 = models.build_model(adtn_fc2_mnist.get_config().model, (32, 32, 1), 10, rngs=nnx.Rngs(0))
  assert isinstance(fc2.hidden, ADTNDense) and fc2.hidden.weight_params == 16 * 2 * 19 + 1
  lenet = models.build_model(adtn_lenet5_mnist.get_config("layers=3").model, (28, 28, 1), 10,
                             rngs=nnx.Rngs(0))
  assert isinstance(lenet.conv2, ADTNConv) and isinstance(lenet.fc1, ADTNDense)
  # Q = ceil(log2(weights)): conv2 2,400 -> 12, fc1 48,000 -> 16, fc2 10,080 -> 14.
  assert [lenet.conv2.weight_params, lenet.fc1.weight_params, lenet.fc2.weight_params] == [
      16 * 3 * 11 + 1, 16 * 3 * 15 + 1, 16 * 3 * 13 + 1]
  dense = models.build_model(adtn_lenet5_mnist.get_config("dense").model, (28, 28, 1), 10,
                             rngs=nnx.Rngs(0))
  assert total_params(dense) == 61706
  assert [p["model.layers.hidden"]["kind"] for p in adtn_fc2_mnist.sweep()] == ["adtn"] * 3 + ["dense"]


