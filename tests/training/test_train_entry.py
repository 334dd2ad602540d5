"""What tn.train (tnjax.training.train) accepts as its config."""

import pytest

import tnjax as tn
from tnjax import config_lib, errors
from tnjax.training import trainer


def test_a_config_path_or_packaged_name_is_loaded_as_load_config_would():
  loaded = trainer._as_config("tt_mnist:synthetic,runlocal")
  assert loaded.to_dict() == config_lib.load_config("tt_mnist:synthetic,runlocal").to_dict()
  assert loaded.is_locked
  config = config_lib.load_config("tt_mnist:synthetic")
  assert trainer._as_config(config) is config


def test_anything_else_is_one_line_before_any_work(tmp_path):
  with pytest.raises(errors.UserError, match=r"takes an ml_collections.ConfigDict .* not a dict"):
    tn.train({"num_epochs": 1}, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
