"""Streaming TFDS input (ImageNet path) under tfds mock data: shapes, determinism,
resume by skipping, padded eval batches, and training through it."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tnjax.training import schema as config_schema
from tnjax.training import trainer
from tnjax.data import stream as data_stream

pytestmark = pytest.mark.slow


def _data_config():
  c = config_schema.base_config()
  c.data.update(
    source="tfds_stream",
    name="imagenet2012",
    image_size=16,
    resize_to=20,
    max_train_examples=24,
    max_test_examples=10,
  )
  return c


def test_batches_are_normalised_crops_deterministic_per_epoch_and_skippable():
  config = _data_config().data
  with tfds.testing.mock_data(num_examples=24):
    info = data_stream.stream_info(config)
    assert (info.num_train, info.num_test, info.num_classes) == (24, 10, 1000)
    assert info.image_shape == (16, 16, 3)
    first = list(data_stream.train_batches(config, 8, seed=0, epoch=0))
    again = list(data_stream.train_batches(config, 8, seed=0, epoch=0))
    other = list(data_stream.train_batches(config, 8, seed=0, epoch=1))
    resumed = list(data_stream.train_batches(config, 8, seed=0, epoch=0, skip_batches=1))
    evals = list(data_stream.eval_batches(config, 8))
    padded = list(data_stream.eval_batches(config, 8, num_batches=3))  # a longer slice elsewhere
  assert len(first) == 3 and first[0][0].shape == (8, 16, 16, 3) and first[0][0].dtype == np.float32
  assert abs(float(np.mean(first[0][0]))) < 2.5  # ImageNet-normalised uint8 noise
  for (x, y), (x2, y2) in zip(first, again):
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
  assert not np.array_equal(first[0][0], other[0][0])
  assert len(resumed) == 2
  np.testing.assert_array_equal(resumed[0][0], first[1][0])
  assert [len(m) for _, _, m in evals] == [8, 8] and [m.sum() for _, _, m in evals] == [8, 2]
  assert [m.sum() for _, _, m in padded] == [8, 2, 0] and padded[2][0].shape == (8, 16, 16, 3)
  np.testing.assert_array_equal(padded[1][0], evals[1][0])


def test_process_shares_give_every_process_the_same_step_counts():
  # even_splits hands out 11 examples as 5 + 6: an epoch is 5, eval pads up to 6.
  assert data_stream.shares(11, 2) == (5, 6)
  assert data_stream.shares(12, 4) == (3, 3)
  assert data_stream.shares(11, 2, limit=4) == (4, 4) and data_stream.shares(11, 2, 6) == (5, 6)


def test_training_streams_imagenet_shaped_batches(tmp_path):
  c = _data_config()
  c.model.update(name="fc2", hidden_features=16)
  c.update(num_epochs=2, batch_size=8, eval_batch_size=8, progress_bar=False)
  c.checkpoint.async_save = False  # orbax's background commit trips over tfds mock's gfile patch
  with tfds.testing.mock_data(num_examples=24):
    result = trainer.train(c, str(tmp_path)).result
  assert result["train_step_compilations"] == 1
  with open(tmp_path / "result.json") as f:
    assert json.load(f)["step"] == 2 * (24 // 8)
  assert 0.0 <= result["test_accuracy"] <= 1.0 and np.isfinite(result["test_loss"])
