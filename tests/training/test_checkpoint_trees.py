"""Checkpoint trees are named {"model", "optimizer"}; positional ones from older runs still load."""

import numpy as np
import optax
from flax import nnx

from tnjax.training import checkpoint, pretrained
from tnjax.models import build_model


def _model_and_optimizer(seed):
  model = build_model(
    {"name": "lenet5", "layers": {"fc1": {"kind": "tt", "ranks": 2}}},
    (28, 28, 1),
    10,
    rngs=nnx.Rngs(seed),
  )
  return model, nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)


def _flat(state):
  return {"/".join(map(str, k)): np.asarray(v.get_value()) for k, v in nnx.to_flat_state(state)}


def test_a_positional_checkpoint_restores_into_the_named_tree(tmp_path):
  model, optimizer = _model_and_optimizer(0)
  _, old_state = nnx.split((model, optimizer))  # the layout before names: '0' and '1'
  saver = checkpoint.Checkpointer(str(tmp_path), async_save=False)
  saver.save(5, old_state, {"note": "old"})
  saver.close()
  fresh_model, fresh_optimizer = _model_and_optimizer(1)
  _, target = nnx.split({"model": fresh_model, "optimizer": fresh_optimizer})
  step, restored, config = checkpoint.Checkpointer(str(tmp_path)).restore_latest(target)
  assert (step, config, set(restored)) == (5, {"note": "old"}, {"model", "optimizer"})
  expected = _flat(nnx.state({"model": model, "optimizer": optimizer}))
  got = _flat(restored)
  assert got.keys() == expected.keys()
  for key in expected:
    np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_model_arrays_load_by_name_into_a_fresh_model(tmp_path):
  model, optimizer = _model_and_optimizer(0)
  _, state = nnx.split({"model": model, "optimizer": optimizer})
  saver = checkpoint.Checkpointer(str(tmp_path), async_save=False)
  saver.save(1, state, {})
  saver.close()
  assert set(checkpoint.restore_arrays(str(tmp_path))) == {"model", "optimizer"}
  arrays = checkpoint.model_arrays(str(tmp_path))
  assert "fc1/cores/0" in arrays and "conv1/kernel" in arrays
  fresh, _ = _model_and_optimizer(3)
  loaded = pretrained.load_arrays(fresh, arrays)
  assert len(loaded) == len(arrays)
  x = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype(np.float32)
  np.testing.assert_array_equal(fresh(x), model(x))
