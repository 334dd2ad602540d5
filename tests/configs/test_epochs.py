"""`:epochs=N` and `--config.num_epochs=N` give the same run: no config derives another field
from its epochs argument (schedule lengths follow config.num_epochs in the trainer)."""

import importlib
import pkgutil

import numpy as np
import pytest

from tnjax import config_lib, configs
from tnjax.training import schema as config_schema
from tnjax.training import optim


def _configs_taking_epochs():
  names = []
  for module in pkgutil.iter_modules(configs.__path__):
    source = importlib.import_module(f"tnjax.configs.{module.name}")
    if hasattr(source, "get_config"):
      try:
        source.get_config("epochs=7")
      except Exception:  # pylint: disable=broad-except  # takes no epochs argument
        continue
      names.append(module.name)
  return names


@pytest.mark.parametrize("name", _configs_taking_epochs())
def test_the_epochs_argument_and_the_num_epochs_override_agree(name):
  module = importlib.import_module(f"tnjax.configs.{name}")
  by_argument = module.get_config("epochs=7")
  by_override = config_lib.apply_overrides(module.get_config(), {"num_epochs": "7"})
  assert by_argument.to_dict() == by_override.to_dict()


def test_a_logspace_decay_longer_than_the_run_ends_with_the_run():
  config = config_schema.base_config().schedule
  config.update(name="logspace", learning_rate=1e-2, end_learning_rate=1e-5, decay_epochs=45)
  schedule = optim.make_schedule(config, steps_per_epoch=10, num_epochs=30)
  assert np.isclose(float(schedule(0)), 1e-2) and np.isclose(float(schedule(299)), 1e-5)
