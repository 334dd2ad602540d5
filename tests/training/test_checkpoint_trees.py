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


def _state(model, optimizer):
  return nnx.split({"model": model, "optimizer": optimizer})[1]


def test_another_models_checkpoint_is_one_line_and_a_damaged_one_is_set_aside(tmp_path):
  import pytest

  from tnjax import errors

  model, optimizer = _model_and_optimizer(0)
  saver = checkpoint.Checkpointer(str(tmp_path / "checkpoints"), async_save=False)
  saver.save(5, _state(model, optimizer), {"note": "five"})
  saver.save(6, _state(model, optimizer), {"note": "six"})
  saver.close()
  dense = build_model({"name": "lenet5"}, (28, 28, 1), 10, rngs=nnx.Rngs(0))
  other = _state(dense, nnx.Optimizer(dense, optax.adam(1e-3), wrt=nnx.Param))
  with pytest.raises(errors.UserError, match=r"holds another model than this config builds \("):
    checkpoint.Checkpointer(str(tmp_path / "checkpoints")).restore_latest(other)
  # Step 6's array data damaged (its metadata intact): set aside, step 5 restored.
  for path in (tmp_path / "checkpoints" / "6" / "state").rglob("*"):
    if path.is_file() and "d" == path.parent.name:
      path.write_bytes(path.read_bytes()[:10])
  fresh, fresh_optimizer = _model_and_optimizer(1)
  step, _, config = checkpoint.Checkpointer(str(tmp_path / "checkpoints")).restore_latest(
    _state(fresh, fresh_optimizer)
  )
  assert (step, config) == (5, {"note": "five"})
  assert (tmp_path / "checkpoints_unreadable" / "6").exists()
