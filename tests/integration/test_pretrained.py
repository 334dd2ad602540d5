"""Loading trained dense weights by name: values, renames, clear errors, trainer hook."""

import h5py
import numpy as np
import pytest
from flax import nnx

from tnjax.training import schema as config_schema
from tnjax import errors, models
from tnjax.training import pretrained, trainer


def _lenet():
  return models.build_model(
    {"name": "lenet5", "layers": {"fc1": {"kind": "tt", "ranks": 2}}},
    (28, 28, 1),
    10,
    rngs=nnx.Rngs(0),
  )


def test_npz_and_h5_arrays_land_on_the_named_parameters(tmp_path):
  kernel = np.random.default_rng(0).normal(size=(5, 5, 1, 6)).astype(np.float32)
  np.savez(tmp_path / "w.npz", **{"conv1/kernel": kernel, "b2": np.arange(16, dtype=np.float32)})
  model = _lenet()
  tt_before = np.asarray(model.fc1.cores[0][...])
  loaded = pretrained.load_pretrained(model, str(tmp_path / "w.npz"), {"b2": "conv2/bias"})
  assert loaded == ["conv1/kernel", "conv2/bias"]
  np.testing.assert_array_equal(model.conv1.kernel[...], kernel)
  np.testing.assert_array_equal(model.conv2.bias[...], np.arange(16))
  np.testing.assert_array_equal(model.fc1.cores[0][...], tt_before)  # not in the file: kept
  with h5py.File(tmp_path / "w.h5", "w") as f:
    f.create_dataset("output/bias", data=np.ones(10, np.float32))
  pretrained.load_pretrained(model, str(tmp_path / "w.h5"))
  np.testing.assert_array_equal(model.output.bias[...], np.ones(10))


def test_unmatched_names_and_shapes_are_errors_that_list_the_model(tmp_path):
  np.savez(tmp_path / "typo.npz", **{"conv_1/kernel": np.zeros((5, 5, 1, 6), np.float32)})
  with pytest.raises(
    ValueError, match=r"match no model parameter: \['conv_1/kernel'\].*conv1/kernel"
  ):
    pretrained.load_pretrained(_lenet(), str(tmp_path / "typo.npz"))
  np.savez(tmp_path / "shape.npz", **{"conv1/kernel": np.zeros((3, 3, 1, 6), np.float32)})
  with pytest.raises(
    ValueError, match=r"conv1/kernel: file \(3, 3, 1, 6\) vs model \(5, 5, 1, 6\)"
  ):
    pretrained.load_pretrained(_lenet(), str(tmp_path / "shape.npz"))
  with pytest.raises(errors.UserError, match="does not exist"):
    pretrained.load_pretrained(_lenet(), str(tmp_path / "missing.npz"))


def test_trainer_starts_from_the_pretrained_arrays(tmp_path):
  c = config_schema.base_config()
  c.data.source, c.data.name = "synthetic", "synthetic"
  c.data.synthetic.update(image_shape=(28, 28, 1), num_train=32, num_test=16)
  c.model.update(name="lenet5")
  c.update(num_epochs=1, batch_size=16, eval_batch_size=16, progress_bar=False)
  c.optimizer.update(name="sgd", momentum=0.0)
  c.schedule.learning_rate = 0.0  # no update: the loaded values must survive training
  kernel = np.full((5, 5, 1, 6), 0.25, np.float32)
  np.savez(tmp_path / "w.npz", **{"conv1/kernel": kernel})
  c.pretrained.path = str(tmp_path / "w.npz")
  _, state = trainer.train(c, str(tmp_path / "run"))
  flat = {"/".join(map(str, k)): v for k, v in nnx.to_flat_state(state["model"])}
  np.testing.assert_array_equal(np.asarray(flat["conv1/kernel"].get_value()), kernel)
