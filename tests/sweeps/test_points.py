"""A sweep point's config is built as every program builds one (config_lib.config_of)."""

import pytest

from tnjax import config_lib, errors
from tnjax.configs import tt_mnist
from tnjax.sweeps import points


def test_a_point_config_is_the_loaded_config_with_its_overrides_and_locked():
  own = points.sweep_points(tt_mnist)[2]
  config = points.point_config(tt_mnist, "synthetic", 2, {"num_epochs": "3"})
  expected = config_lib.load_config("tt_mnist:synthetic", {"num_epochs": 3})
  expected = config_lib.apply_overrides(expected, own, new_leaves=True)
  assert config.to_dict() == expected.to_dict() and config.num_epochs == 3
  with pytest.raises(AttributeError):  # locked: a typo cannot add a field
    config.num_epoch = 4


def test_a_get_config_that_returns_no_configdict_is_one_line():
  class Module:
    __file__ = "my_config.py"

    @staticmethod
    def get_config():
      return {"num_epochs": 1}

  with pytest.raises(errors.UserError, match=r"get_config\(\) of my_config.py returned a dict"):
    config_lib.config_of(Module, None)
