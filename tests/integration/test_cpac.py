"""The CPAC-Conv network: exact sizes and training through the trainer."""

import pytest
from flax import nnx

from tnjax.configs import cpac_mnist
from tnjax import trainer
from tnjax.models import build_model


def test_cpac_network_parameter_counts_are_exact():
  cp = build_model(cpac_mnist.get_config("rank=5").model, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  # conv1: 5 (8 + 3 + 3 + 1) + 8 bias; conv2: 5 (8 + 3 + 3 + 8) + 8; 5x5x8 -> 50 -> 10.
  assert cp.conv1.num_params == 83 and cp.conv2.num_params == 118
  assert cp.hidden.num_params == 200 * 50 + 50 and cp.output.num_params == 510
  dense = build_model(cpac_mnist.get_config("dense").model, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  assert dense.conv1.num_params == 72 and dense.conv2.num_params == 576  # no bias


@pytest.mark.parametrize("arg", ["rank=3", "dense"])
def test_cpac_config_trains_on_synthetic_data(tmp_path, arg):
  config = cpac_mnist.get_config(f"{arg},fast,synthetic,runlocal")
  config.data.max_train_examples = 0
  config.data.synthetic.num_train = 512
  config.num_epochs = 3
  config.progress_bar = False
  result = trainer.train_and_evaluate(config, str(tmp_path))
  assert result["train_step_compilations"] == 1
  assert result["test_accuracy"] > 0.5  # chance is 0.1
