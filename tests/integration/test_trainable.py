"""config.trainable: only the named parameters train; the others stay bitwise unchanged."""

import jax
import numpy as np
import pytest
from flax import nnx

from tnjax import models
from tnjax.training import optim, trainer
from tnjax.configs import tt_mnist, tt_vgg19


def _initial_params(config, image_shape, classes):
  model = models.build_model(
    config.model, image_shape, classes, rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1)
  )
  return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def _max_change(before, after) -> dict:
  """Largest absolute change of each top-level layer's parameters."""
  return {
    name: max(
      float(np.abs(np.asarray(a) - np.asarray(b)).max())
      for b, a in zip(jax.tree.leaves(before[name]), jax.tree.leaves(after[name]))
    )
    for name in before
  }


def test_vgg_config_trains_only_the_fc_layers_and_leaves_the_convs_bitwise_unchanged(tmp_path):
  # The paper's protocol: the pretrained conv part is frozen, FC6-FC8 train (MR5 FC6 here).
  config = tt_vgg19.get_config("runlocal,arch=mr5_fc_fc")
  config.num_epochs, config.data.max_train_examples = 1, 2 * config.batch_size
  config.model.hidden_features = 64
  assert config.trainable == r"^(fc6|fc7|output)/" and config.optimizer.weight_decay > 0
  before = _initial_params(config, (32, 32, 3), 1000)
  result, state = trainer.train(config, str(tmp_path))
  assert result["train_step_compilations"] == 1 and np.isfinite(result["test_loss"])
  change = _max_change(before, nnx.to_pure_dict(nnx.state(state["model"], nnx.Param)))
  frozen = {name: c for name, c in change.items() if name.startswith("conv")}
  assert len(frozen) == 16 and all(c == 0.0 for c in frozen.values()), frozen
  assert all(change[name] > 0 for name in ("fc6", "fc7", "output")), change  # FC8 is 'output'


def test_trainable_head_of_a_tt_fc2_and_optimizer_state_only_for_it(tmp_path):
  config = tt_mnist.get_config("synthetic,runlocal")
  config.update(num_epochs=1, progress_bar=False, trainable="output")
  config.pretrained.allow_random_frozen = True  # the hidden layer is frozen at its init
  config.data.update(max_train_examples=0)
  config.data.synthetic.num_train = 64
  before = _initial_params(config, (32, 32, 1), 10)
  _, state = trainer.train(config, str(tmp_path))
  change = _max_change(before, nnx.to_pure_dict(nnx.state(state["model"], nnx.Param)))
  assert change["hidden"] == 0.0 and change["output"] > 0
  # The optimizer keeps moments only for what it trains (momentum for 'output' only).
  opt_leaves = jax.tree.leaves(nnx.to_pure_dict(state["optimizer"]["opt_state"]))
  assert sum(x.size for x in opt_leaves if x.ndim) == sum(
    x.size for x in jax.tree.leaves(before["output"])
  )


def test_bad_trainable_patterns_fail_in_one_line():
  config = tt_mnist.get_config("synthetic,runlocal")
  model = models.build_model(config.model, (32, 32, 1), 10, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="matches no parameter; parameter paths look like"):
    optim.trainable_params(model, "fc9")
  with pytest.raises(ValueError, match="not a valid regex"):
    optim.trainable_params(model, "fc[")
  assert optim.trainable_params(model, "").pattern == ""
