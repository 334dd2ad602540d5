"""Input: IDX parsing, preprocessing values, synthetic data, batching, TFDS mock, errors."""

import gzip
import struct

import numpy as np
import pytest

from tnjax import data, errors


def write_idx(path, array, compress):
  header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
    f">{array.ndim}I", *array.shape
  )
  payload = header + array.astype(np.uint8).tobytes()
  opener = gzip.open if compress else open
  with opener(path, "wb") as f:
    f.write(payload)


@pytest.fixture
def idx_dir(tmp_path):
  rng = np.random.default_rng(0)
  arrays = {
    "train": (rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)),
    "t10k": (rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)),
  }
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
  np.testing.assert_allclose(
    d.test_images[:, 2:30, 2:30, 0], arrays["t10k"][0] / 255.0 - mean, atol=1e-5
  )
  assert np.all(d.train_images[:, :2] == 0)  # padded border: 0 - mean(0) = 0


def test_odd_padding_puts_the_extra_row_and_column_after(idx_dir):
  directory, arrays = idx_dir
  d = data.load_dataset(config(source="idx", idx_dir=str(directory), pad_to=31))
  np.testing.assert_allclose(
    d.train_images[:, 1:29, 1:29, 0], arrays["train"][0] / 255.0, rtol=1e-6
  )
  assert d.train_images[:, :1].sum() == 0 and d.train_images[:, 29:].sum() == 0


def test_idx_num_classes_known_for_named_datasets_else_from_labels(tmp_path):
  for prefix, count in (("train", 6), ("t10k", 3)):
    write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", np.zeros((count, 4, 4)), compress=False)
    write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(count) % 3, compress=False)
  named = data.load_dataset(config(source="idx", idx_dir=str(tmp_path), name="fashion_mnist"))
  unnamed = data.load_dataset(config(source="idx", idx_dir=str(tmp_path), name="my_shapes"))
  assert (named.num_classes, unnamed.num_classes) == (10, 3)
  assert unnamed.name == "my_shapes (idx)"


def test_symmetric_scale_maps_0_255_to_minus_1_plus_1(idx_dir):
  directory, arrays = idx_dir
  d = data.load_dataset(config(source="idx", idx_dir=str(directory), scale="symmetric"))
  np.testing.assert_allclose(d.train_images[..., 0], arrays["train"][0] / 127.5 - 1.0, atol=1e-6)
  np.testing.assert_allclose(d.test_images[..., 0], arrays["t10k"][0] / 127.5 - 1.0, atol=1e-6)


def test_standardize_uses_per_channel_train_statistics_for_both_splits():
  c = config(source="synthetic", scale="standardize")
  c.synthetic.update(image_shape=(4, 4, 3), num_train=50, num_test=20)
  raw = data.load_dataset(config(source="synthetic", synthetic=c.synthetic.to_dict()))  # unit scale
  d = data.load_dataset(c)
  mean = raw.train_images.mean(axis=(0, 1, 2))
  std = raw.train_images.std(axis=(0, 1, 2))
  assert len(set(np.round(mean, 3))) == 3  # the channels really differ, so per-channel matters
  np.testing.assert_allclose(d.train_images, (raw.train_images - mean) / std, atol=1e-4)
  np.testing.assert_allclose(d.test_images, (raw.test_images - mean) / std, atol=1e-4)
  np.testing.assert_allclose(d.train_images.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(d.train_images.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_max_examples_keep_the_first_k(idx_dir):
  directory, arrays = idx_dir
  d = data.load_dataset(
    config(source="idx", idx_dir=str(directory), max_train_examples=4, max_test_examples=2)
  )
  np.testing.assert_array_equal(d.train_labels, arrays["train"][1][:4])
  np.testing.assert_array_equal(d.test_labels, arrays["t10k"][1][:2])
  assert d.train_images.shape == (4, 28, 28, 1) and d.num_classes == 10


def test_held_out_evaluation_uses_training_examples_after_the_kept_ones(idx_dir):
  """data.held_out_eval: the evaluated split is training examples the run does not train
  on (right after max_train_examples, or the last ones), and the test split is not used."""
  directory, arrays = idx_dir
  labels = arrays["train"][1]
  base = dict(source="idx", idx_dir=str(directory))
  d = data.load_dataset(config(**base, max_train_examples=4, held_out_eval=3))
  np.testing.assert_array_equal(d.train_labels, labels[:4])
  np.testing.assert_array_equal(d.test_labels, labels[4:7])
  d = data.load_dataset(config(**base, held_out_eval=5))  # all 12 trained: the last 5 held
  np.testing.assert_array_equal(d.train_labels, labels[:7])
  np.testing.assert_array_equal(d.test_labels, labels[7:])
  with pytest.raises(errors.UserError) as e:
    data.load_dataset(config(**base, held_out_eval=7))
  assert "between 1 and half the 12 training examples" in str(e.value)


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


@pytest.mark.parametrize("name, image_shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_source_under_mock_data(name, image_shape):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=20):
    d = data.load_dataset(config(source="tfds", name=name))
  assert d.train_images.shape == (20,) + image_shape and d.test_images.shape == (20,) + image_shape
  assert d.train_images.dtype == np.float32 and d.train_labels.dtype == np.int32
  assert 0.0 <= d.train_images.min() <= d.train_images.max() <= 1.0
  assert d.num_classes == 10 and d.name == f"{name} (tfds)"


def test_tfds_download_failure_names_the_offline_options(monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")

  def refuse_download(*args, **kwargs):
    raise OSError("network unreachable")

  monkeypatch.setattr(tfds, "load", refuse_download)
  monkeypatch.setattr(data.tfds_source, "_network_reachable", lambda *a, **k: True)  # fails later
  with pytest.raises(RuntimeError, match="could not load") as raised:
    data.load_dataset(config(source="tfds", name="fashion_mnist"))
  for option in (
    "data.source='idx'",
    "data.idx_dir",
    "/usr/share/datasets/fashion-mnist",
    "data.source='synthetic'",
    "data.data_dir",
  ):
    assert option in str(raised.value)


@pytest.mark.parametrize(
  "fields, error, message",
  [
    ({"source": "s3"}, ValueError, "data.source='s3' is unknown"),
    ({"scale": "zscore"}, ValueError, "data.scale='zscore' is unknown"),
    ({"source": "tfds", "name": "imagenet9"}, ValueError, "is not supported"),
    ({"source": "idx", "idx_dir": ""}, ValueError, "needs data.idx_dir"),
    ({"source": "idx", "idx_dir": "/nonexistent"}, FileNotFoundError, "train-images-idx3-ubyte"),
    ({"source": "synthetic", "pad_to": 20}, ValueError, "pad_to=20 is smaller"),
  ],
)
def test_bad_data_configs_raise_clear_errors(fields, error, message):
  with pytest.raises(error, match=message):
    data.load_dataset(config(**fields))


def test_bad_idx_file_is_named(tmp_path):
  (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
  with pytest.raises(ValueError, match="bad magic number"):
    data.read_idx(str(tmp_path / "bad"))


def test_gcn_zca_whitens_the_train_split_and_is_saved_with_the_run(tmp_path):
  from tnjax.training import trainer
  from tnjax.configs import tt_cifar10
  from tnjax.data import preprocess

  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(400, 4, 4, 3)).astype(np.uint8)
  gcn = preprocess.global_contrast_normalize(images.astype(np.float32) / 255)
  flat = gcn.reshape(400, -1).astype(np.float64)
  np.testing.assert_allclose(flat.mean(axis=1), 0, atol=1e-4)
  np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 55, rtol=1e-4)
  zca = preprocess.zca_fit(gcn, bias=1e-6)
  white = preprocess.zca_apply(gcn, zca).reshape(400, -1).astype(np.float64)
  # Whitened: identity covariance on the train split, except along the all-ones
  # direction that GCN removed (each image sums to 0): the projection I - 11^T / 48.
  projection = np.eye(48) - np.ones((48, 48)) / 48
  np.testing.assert_allclose(np.cov(white, rowvar=False, bias=True), projection, atol=2e-3)
  np.testing.assert_allclose(zca["zca_matrix"], zca["zca_matrix"].T, atol=1e-5)  # symmetric

  config = tt_cifar10.get_config("synthetic,runlocal,dense")
  assert config.data.whiten == "gcn_zca"
  config.num_epochs, config.data.max_train_examples = 1, 32
  config.data.synthetic.image_shape = (8, 8, 3)  # a 192 x 192 ZCA matrix
  trainer.train(config, str(tmp_path))
  saved = np.load(tmp_path / "preprocessing.npz")
  assert saved["zca_matrix"].shape == (192, 192) and saved["zca_mean"].shape == (192,)
