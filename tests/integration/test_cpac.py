"""The CPAC-Conv network: exact sizes and training through the trainer."""

import numpy as np
import pytest
from flax import nnx

from tnjax.configs import cpac_mnist
from tnjax.training import trainer
from tnjax.models import build_model


def test_cpac_network_parameter_counts_are_exact():
  cp = build_model(cpac_mnist.get_config("rank=5").model, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  # No biases (the paper's CPAC conv): conv1 5 (8 + 3 + 3 + 1); conv2 5 (8 + 3 + 3 + 8);
  # then 5x5x8 -> 50 -> 10.
  assert cp.conv1.num_params == 75 and cp.conv2.num_params == 110
  assert cp.hidden.num_params == 200 * 50 + 50 and cp.output.num_params == 510
  dense = build_model(cpac_mnist.get_config("dense").model, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  assert dense.conv1.num_params == 72 and dense.conv2.num_params == 576  # no bias
  single = build_model(
    cpac_mnist.get_config("rank=3,single_conv").model, (28, 28, 1), 10, rngs=nnx.Rngs(0)
  )
  assert single.conv2 is None and single.hidden.in_features == 13 * 13 * 8


def test_cpac_factors_start_as_cp_als_of_a_random_kernel():
  config = cpac_mnist.get_config("rank=4")
  assert config.model.conv_layer.factor_init == "cp_als"
  model = build_model(config.model, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  kernel = model.conv2.to_dense()
  # A random kernel randn / 9 has entries of standard deviation 1/9; a rank-4 CP-ALS
  # fit of a 3x3x8x8 one keeps only part of that energy (0.057 here).
  assert 0.02 < float(kernel.std()) < 1 / 9
  variance = build_model(
    cpac_mnist.get_config("rank=4,variance_init").model, (28, 28, 1), 10, rngs=nnx.Rngs(0)
  )
  assert variance.conv2.spec.factor_init == "variance"
  # The paper's reading of conv1: one signed in-channel factor value per component.
  values = model.conv1.significance("in_factor")
  assert values.shape == (4,)
  np.testing.assert_array_equal(values, model.conv1.factors[3][...][0])
  with pytest.raises(ValueError, match="needs a CP conv with one input channel"):
    model.conv2.significance("in_factor")


@pytest.mark.parametrize("arg", ["rank=3", "dense"])
def test_cpac_config_trains_on_synthetic_data(tmp_path, arg):
  config = cpac_mnist.get_config(f"{arg},fast,synthetic,runlocal")
  config.data.max_train_examples = 0
  config.data.synthetic.num_train = 512
  config.num_epochs = 3
  config.progress_bar = False
  result = trainer.train(config, str(tmp_path)).result
  assert result["train_step_compilations"] == 1
  assert result["test_accuracy"] > 0.5  # chance is 0.1
