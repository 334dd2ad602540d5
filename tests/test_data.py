"""Input: IDX parsing, preprocessing values, synthetic data, batching, TFDS mock, errors."""

import gzip
import struct

import numpy as np
import pytest

from tnjax import data


def write_idx(path, array, compress):
  header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  payload = header + array.astype(np.uint8).tobytes()
  opener = gzip.open if compress else open
  with opener(path, "wb") as f:
    f.write(payload)


@pytest.fixture
def idx_dir(tmp_path):
  rng = np.random.default_rng(0)
  arrays = {"train": (rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)),
            "t10k": (rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5))}
  for prefix, (images, labels) in arrays.items():
    compress = prefix == "train"  # one split gzipped, one plain: both must load
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
  return tmp_path, arrays


def config(**fields):
  c = data.default_data_config()
  c.update(fields)
  return c


def test_idx_files_load_exactly(idx_dir):
  directory, arrays = idx_dir
  d = data.load_dataset(config(source="idx", idx_dir=str(directory)))
  np.testing.assert_allclose(d.train_images[..., 0], arrays["train"][0] / 255.0, rtol=1e-6)
  np.testing.assert_array_equal(d.test_labels, arrays["t10k"][1])
  assert d.image_shape == (28, 28, 1) and d.train_labels.dtype == np.int32


def test_padding_then_mean_subtraction(idx_dir):
  directory, arrays = idx_dir
  d = data.load_dataset(config(source="idx", idx_dir=str(directory), pad_to=32, subtract_mean=True))
  assert d.image_shape == (32, 32, 1)
  train = arrays["train"][0] / 255.0
  mean = train.mean(axis=0)
  np.testing.assert_allclose(d.train_images[:, 2:30, 2:30, 0], train - mean, atol=1e-5)
  np.testing.assert_allclose(d.test_images[:, 2:30, 2:30, 0], arrays["t10k"][0] / 255.0 - mean, atol=1e-5)
  assert np.all(d.train_images[:, :2] == 0)  # padded border: 0 - mean(0) = 0


@pytest.mark.parametrize("scale, low, high", [("unit", 0.0, 1.0), ("symmetric", -1.0, 1.0)])
def test_scale_ranges(idx_dir, scale, low, high):
  d = data.load_dataset(config(source="idx", idx_dir=str(idx_dir[0]), scale=scale))
  assert d.train_images.min() >= low and d.train_images.max() <= high
  assert d.train_images.min() < low + 0.01 and d.train_images.max() > high - 0.01


def test_standardize_gives_zero_mean_unit_std_on_train(idx_dir):
  d = data.load_dataset(config(source="idx", idx_dir=str(idx_dir[0]), scale="standardize"))
  assert abs(d.train_images.mean()) < 1e-5 and d.train_images.std() == pytest.approx(1.0, rel=1e-4)


def test_synthetic_is_deterministic_and_learnable():
  c = config(source="synthetic")
  c.synthetic.update(image_shape=(8, 8, 3), num_train=600, num_test=200)
  a, b = data.load_dataset(c), data.load_dataset(c)
  np.testing.assert_array_equal(a.train_images, b.train_images)
  assert a.image_shape == (8, 8, 3)
  # Nearest class mean (from the train split) classifies the test split well.
  x, y = a.train_images.reshape(600, -1), a.train_labels
  means = np.stack([x[y == k].mean(0) for k in range(10)])
  test = a.test_images.reshape(200, -1)
  predicted = np.argmin(((test[:, None] - means[None]) ** 2).sum(-1), axis=1)
  assert np.mean(predicted == a.test_labels) > 0.9


def test_epoch_batches_are_deterministic_permutations():
  first = data.epoch_batches(103, 10, seed=3, epoch=0)
  assert first.shape == (10, 10) and len(np.unique(first)) == 100
  np.testing.assert_array_equal(first, data.epoch_batches(103, 10, seed=3, epoch=0))
  assert not np.array_equal(first, data.epoch_batches(103, 10, seed=3, epoch=1))
  assert not np.array_equal(first, data.epoch_batches(103, 10, seed=4, epoch=0))


def test_eval_batches_cover_every_example_once():
  indices, mask = data.eval_batches(23, 10)
  assert indices.shape == mask.shape == (3, 10)
  np.testing.assert_array_equal(np.sort(indices[mask]), np.arange(23))


def test_tfds_source_under_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=20):
    d = data.load_dataset(config(source="tfds", name="cifar10"))
  assert d.train_images.shape == (20, 32, 32, 3) and d.num_classes == 10
  assert d.train_images.dtype == np.float32 and 0.0 <= d.train_images.min() <= d.train_images.max() <= 1.0


@pytest.mark.parametrize("fields, error, message", [
    ({"source": "s3"}, ValueError, "data.source='s3' is unknown"),
    ({"scale": "zscore"}, ValueError, "data.scale='zscore' is unknown"),
    ({"source": "tfds", "name": "imagenet9"}, ValueError, "is not supported"),
    ({"source": "idx", "idx_dir": ""}, ValueError, "needs data.idx_dir"),
    ({"source": "idx", "idx_dir": "/nonexistent"}, FileNotFoundError, "train-images-idx3-ubyte"),
    ({"source": "synthetic", "pad_to": 20}, ValueError, "pad_to=20 is smaller"),
])
def test_bad_data_configs_raise_clear_errors(fields, error, message):
  with pytest.raises(error, match=message):
    data.load_dataset(config(**fields))


def test_bad_idx_file_is_named(tmp_path):
  (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
  with pytest.raises(ValueError, match="bad magic number"):
    data.read_idx(str(tmp_path / "bad"))
