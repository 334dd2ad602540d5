"""Input: TFDS, MNIST-format IDX files or synthetic data, held in memory.

Small image datasets (MNIST, Fashion-MNIST, CIFAR) fit in host and device
memory, so they are loaded once into NumPy, preprocessed once, and batched by
index arrays: no per-example Python, and a batch is a gather on the device.
The order of an epoch is a pure function of (seed, epoch), which makes resumed
runs identical to uninterrupted ones.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import socket
import zlib

import ml_collections
import numpy as np

from tnjax import errors, extras
from tnjax import fileio

SOURCES = ("tfds", "idx", "synthetic")
TFDS_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100")
SCALES = ("unit", "symmetric", "standardize")
# Known class counts, so a subset of IDX files that lacks some label still gets the full output layer.
NUM_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}
_IDX_FILES = {
  "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclasses.dataclass
class Dataset:
  """Preprocessed splits: images (N, H, W, C) float32, labels (N,) int32."""

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  name: str
  # Arrays fitted on the train split that define the inputs (e.g. the ZCA matrix).
  preprocessing: dict = dataclasses.field(default_factory=dict)

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train_images.shape[1:])


def default_data_config() -> ml_collections.ConfigDict:
  """Every field `load_dataset` reads, with defaults."""
  return ml_collections.ConfigDict(
    {
      "source": "tfds",  # tfds | idx | synthetic (in memory) | tfds_stream (ImageNet)
      "name": "mnist",  # tfds name; also the label of idx data
      "data_dir": "",  # tfds data_dir ('' = TFDS default / $TFDS_DATA_DIR); may be gs://
      "idx_dir": "",  # directory of MNIST-format IDX files (.gz or plain)
      "pad_to": 0,  # zero-pad images (centred) to pad_to x pad_to; 0 = no padding
      "scale": "unit",  # unit: x/255 | symmetric: [-1, 1] | standardize: per-channel
      "subtract_mean": False,  # subtract the train-set mean image (after scaling and padding)
      # 'gcn_zca': global contrast normalisation per image, then ZCA whitening fitted
      # on the train split (Novikov et al.'s CIFAR-10 inputs); saved with the run.
      "whiten": "",
      "max_train_examples": 0,  # 0 = all; else the first k (smoke runs)
      "max_test_examples": 0,
      # k > 0: evaluate on k training examples held out after the first max_train_examples
      # (those train) instead of the test split, which is then never read: what a rank
      # search's candidate fine-tunes select on (see held_out_split).
      "held_out_eval": 0,
      "augment": "",  # '' | crop_flip: on-device CIFAR augmentation in the train step
      "image_size": 224,  # tfds_stream: crop size (ImageNet 224)
      "resize_to": 256,  # tfds_stream: shorter side resized to this before cropping
      # tfds_stream: the convention of the pretrained weights: 'imagenet' (RGB / 255,
      # torchvision mean and std) or 'caffe' (BGR, 0-255, Caffe's VGG channel means).
      "normalization": "imagenet",
      "synthetic": {
        "image_shape": (28, 28, 1),
        "num_classes": 10,
        "num_train": 2048,
        "num_test": 512,
        "seed": 0,
      },
    }
  )


def nominal_shape(config) -> tuple[tuple[int, int, int], int]:
  """(image shape, classes) the data config will give, known without loading any data:
  what building a run's model needs (tnjax.load, config checks)."""
  if config.source == "tfds_stream":
    return (config.image_size, config.image_size, 3), 1000  # ImageNet
  (height, width, channels), classes = stored_shape(config)
  pad = config.get("pad_to", 0) or 0  # zero-padded, centred (see _pad)
  return (max(height, pad), max(width, pad), channels), int(classes)


def stored_shape(config) -> tuple[tuple[int, int, int], int]:
  """(image shape, classes) of an in-memory data set's examples as it stores them."""
  if config.source == "synthetic":
    (height, width, channels), classes = config.synthetic.image_shape, config.synthetic.num_classes
    return (int(height), int(width), int(channels)), int(classes)
  color = config.name.startswith("cifar")
  size = 32 if color else 28
  return (size, size, 3 if color else 1), int(NUM_CLASSES.get(config.name, 10))


# --- sources -----------------------------------------------------------------
def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file (MNIST's format; gzipped or plain) into an array."""
  raw = fileio.Path(path).read_bytes()  # local or gs://
  if str(path).endswith(".gz"):
    try:
      raw = gzip.GzipFile(fileobj=io.BytesIO(raw)).read()
    except (EOFError, OSError, zlib.error) as e:
      raise errors.UserError(
        f"{path} is damaged ({type(e).__name__}: {e}); the gzip stream is cut short or "
        "corrupt. Copy the file again (or point data.idx_dir at a good copy)."
      ) from None
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
    raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number {raw[:4]!r}).")
  ndim = raw[3]
  if len(raw) < 4 + 4 * ndim:
    raise errors.UserError(
      f"{path} is damaged: its header is cut short ({len(raw)} bytes for {ndim} dimensions). "
      "Copy the file again (or point data.idx_dir at a good copy)."
    )
  dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
  data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
  if data.size != np.prod(dims):
    raise ValueError(f"{path}: header says shape {tuple(dims)} but holds {data.size} values.")
  return data.reshape(tuple(dims))


def _find_idx(directory: str, stem: str) -> str:
  for candidate in (stem + ".gz", stem):
    path = fileio.Path(directory) / candidate
    if path.exists():
      return str(path)
  expected = [n + ".gz" for pair in _IDX_FILES.values() for n in pair]
  raise FileNotFoundError(
    f"{stem}[.gz] not found in data.idx_dir={directory!r}; it must hold "
    f"{expected} (gzipped or not)."
  )


def _load_idx(config):
  if not config.idx_dir:
    raise ValueError("data.source='idx' needs data.idx_dir, the directory of the IDX files.")
  splits = {}
  for split, (images_stem, labels_stem) in _IDX_FILES.items():
    images = read_idx(_find_idx(config.idx_dir, images_stem))
    labels = read_idx(_find_idx(config.idx_dir, labels_stem)).astype(np.int32)
    if images.ndim == 3:
      images = images[..., None]
    if len(images) != len(labels):
      raise errors.UserError(
        f"IDX {split} split in {config.idx_dir}: {len(images)} images but {len(labels)} labels; "
        f"the files {images_stem} and {labels_stem} must come from the same dataset."
      )
    splits[split] = (images, labels)
  largest_label = int(max(splits["train"][1].max(), splits["test"][1].max()))
  known = NUM_CLASSES.get(config.name, 0)
  if known and largest_label >= known:
    raise errors.UserError(
      f"IDX labels in {config.idx_dir} reach {largest_label}, but "
      f"data.name={config.name!r} has {known} classes; fix data.name."
    )
  return splits, max(known, largest_label + 1)


def _load_tfds(config):
  if config.name not in TFDS_NAMES:
    raise ValueError(
      f"data.name={config.name!r} is not supported with data.source='tfds'; "
      f"choose one of {TFDS_NAMES}."
    )
  tf = extras.require("tensorflow", "data.source='tfds'")
  tfds = extras.require("tensorflow_datasets", "data.source='tfds'")

  try:
    tf.config.set_visible_devices([], "GPU")  # TF must not grab accelerator memory from JAX
  except RuntimeError:  # TF was already initialised by someone else; its devices are fixed
    pass
  _fail_fast_if_offline(tfds, config)
  splits = {}
  try:
    for split in ("train", "test"):
      # Large batches rather than batch_size=-1, which aborts TF 2.21 under tfds's mock_data.
      dataset = tfds.load(
        config.name, split=split, as_supervised=True, data_dir=config.data_dir or None
      ).batch(8192)
      chunks = list(tfds.as_numpy(dataset))
      splits[split] = (
        np.concatenate([c[0] for c in chunks]),
        np.concatenate([c[1] for c in chunks]).astype(np.int32),
      )
    num_classes = (
      tfds.builder(config.name, data_dir=config.data_dir or None).info.features["label"].num_classes
    )
  except Exception as e:  # TFDS raises many types for a failed download / missing data
    raise RuntimeError(
      f"TFDS could not load {config.name!r} (no network or no prepared copy in "
      f"data_dir={config.data_dir or 'default'}): {type(e).__name__}: {str(e)[:300]}\n"
      "Offline options: data.source='idx' with data.idx_dir=<dir of MNIST-format IDX files> "
      "(e.g. Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist); "
      "data.source='synthetic'; or data.data_dir=<a prepared tensorflow_datasets directory>."
    ) from e
  return splits, int(num_classes)


def _network_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
  try:
    socket.create_connection((host, 443), timeout=timeout).close()
    return True
  except OSError:
    return False


def _fail_fast_if_offline(tfds, config) -> None:
  """TFDS retries a failed download for minutes; without a prepared copy and network, say so now."""
  # Under tfds.testing.mock_data nothing is downloaded: its stand-in prepares nothing.
  mocked = tfds.core.DatasetBuilder.download_and_prepare.__name__.startswith("mock")
  builder = tfds.builder(config.name, data_dir=config.data_dir or None)
  if mocked or builder.data_path.exists() or _network_reachable():
    return
  raise errors.UserError(
    f"TFDS has no prepared {config.name!r} in {builder.data_dir} and cannot reach the network "
    "to download it. Offline options: data.source='idx' with data.idx_dir=<dir of MNIST-format "
    "IDX files> (e.g. Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist); "
    "data.source='synthetic'; or data.data_dir=<a prepared tensorflow_datasets directory>."
  )


def _make_synthetic(config):
  """Class prototypes plus noise: deterministic, learnable, any image shape."""
  s = config.synthetic
  shape = tuple(int(d) for d in s.image_shape)
  rng = np.random.default_rng(s.seed)
  prototypes = rng.uniform(0, 255, size=(s.num_classes,) + shape)
  splits = {}
  for split, n in (("train", s.num_train), ("test", s.num_test)):
    labels = rng.integers(0, s.num_classes, size=n).astype(np.int32)
    noisy = prototypes[labels] + rng.normal(0, 60.0, size=(n,) + shape)
    splits[split] = (np.clip(noisy, 0, 255).astype(np.uint8), labels)
  return splits, int(s.num_classes)


# --- preprocessing -----------------------------------------------------------
def scale_table(how: str, fitted: dict, channels: int) -> np.ndarray:
  """(256, channels) float32: the scaled value of each byte in each channel. Scaling is a
  lookup, so a served model (eval_pipeline.apply) gets bit for bit the trainer's inputs."""
  x = np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0)
  x = np.repeat(x, channels, axis=1)
  if how == "symmetric":
    x = np.float32(2.0) * x - np.float32(1.0)
  elif how == "standardize":
    x = (x - fitted["scale_mean"]) / fitted["scale_std"]
  return x.astype(np.float32)


def _scale(images: np.ndarray, how: str, fitted: dict) -> np.ndarray:
  channels = images.shape[-1]
  return scale_table(how, fitted, channels)[images, np.arange(channels)]


def _fit_scale(how: str, train_images: np.ndarray) -> dict:
  """standardize's per-channel statistics of the train split (nothing to fit otherwise)."""
  if how != "standardize":
    return {}
  reference = train_images.astype(np.float32) / 255.0
  return {
    "scale_mean": reference.mean(axis=(0, 1, 2)),
    "scale_std": reference.std(axis=(0, 1, 2)) + np.float32(1e-8),
  }


WHITENINGS = ("", "gcn_zca")


def global_contrast_normalize(images: np.ndarray, scale: float = 55.0) -> np.ndarray:
  """Each image minus its mean, scaled to norm `scale` (pylearn2's CIFAR-10 setting)."""
  flat = images.reshape(len(images), -1).astype(np.float64)
  flat = flat - flat.mean(axis=1, keepdims=True)
  norms = np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-8)
  return (scale * flat / norms).reshape(images.shape).astype(np.float32)


def zca_fit(train_images: np.ndarray, bias: float = 0.1) -> dict:
  """ZCA whitening of the flattened train images: {'zca_mean', 'zca_matrix'}.

  W = V diag(1 / sqrt(eigenvalues + bias)) V^T of the train covariance; `bias`
  keeps the near-zero directions from being amplified (pylearn2's filter_bias).
  """
  flat = train_images.reshape(len(train_images), -1).astype(np.float64)
  mean = flat.mean(axis=0)
  centered = flat - mean
  eigenvalues, vectors = np.linalg.eigh(centered.T @ centered / len(flat))
  matrix = (vectors / np.sqrt(np.maximum(eigenvalues, 0.0) + bias)) @ vectors.T
  return {"zca_mean": mean.astype(np.float32), "zca_matrix": matrix.astype(np.float32)}


def zca_apply(images: np.ndarray, zca: dict) -> np.ndarray:
  flat = images.reshape(len(images), -1) - zca["zca_mean"]
  return (flat @ zca["zca_matrix"]).reshape(images.shape).astype(np.float32)


def _pad(images: np.ndarray, size: int) -> np.ndarray:
  h, w = images.shape[1:3]
  if size < max(h, w):
    raise ValueError(
      f"data.pad_to={size} is smaller than the {h}x{w} images; use 0 or >= {max(h, w)}."
    )
  top, left = (size - h) // 2, (size - w) // 2
  return np.pad(images, ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0)))


def load_raw_splits(config):
  """((train images, labels), (test images, labels), classes) as the data set stores them
  (uint8, no preprocessing), cut to max_*_examples: what a served model is given."""
  if config.source not in SOURCES:
    raise ValueError(f"data.source={config.source!r} is unknown; choose one of {SOURCES}.")
  loader = {"tfds": _load_tfds, "idx": _load_idx, "synthetic": _make_synthetic}[config.source]
  splits, num_classes = loader(config)
  (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
  if train_x.shape[1:] != test_x.shape[1:]:
    raise errors.UserError(
      f"data.source={config.source!r}: train images are {train_x.shape[1:]} "
      f"but test images {test_x.shape[1:]}; both splits must share a shape."
    )
  held = int(config.get("held_out_eval", 0) or 0)
  if held:
    train_x, train_y, test_x, test_y, _ = held_out_split(
      train_x, train_y, held, config.max_train_examples
    )
    return (train_x, train_y), (test_x, test_y), num_classes
  if config.max_train_examples:
    train_x, train_y = train_x[: config.max_train_examples], train_y[: config.max_train_examples]
  if config.max_test_examples:
    test_x, test_y = test_x[: config.max_test_examples], test_y[: config.max_test_examples]
  return (train_x, train_y), (test_x, test_y), num_classes


def held_out_split(images, labels, examples: int, max_train_examples: int = 0):
  """(train images, labels, held-out images, labels, whether the source saw the held-out
  ones) from the training split: the `examples` just after the first `max_train_examples`
  (0: all), or the last `examples` when none are left over (then the kept training
  examples stop before them, but a source trained on the whole split has seen them)."""
  total = len(labels)
  if not 1 <= examples <= total // 2:
    raise errors.UserError(
      f"{examples:,} held-out examples must be between 1 and half the {total:,} training examples."
    )
  used = int(max_train_examples or total)
  start, seen = (used, False) if used + examples <= total else (total - examples, True)
  keep = min(used, start)
  held = slice(start, start + examples)
  return images[:keep], labels[:keep], images[held], labels[held], seen


def load_dataset(config) -> Dataset:
  """Loads and preprocesses both splits: scale -> pad -> [GCN + ZCA] -> subtract the train
  mean image (eval_pipeline.py replays the same steps for serving)."""
  if config.scale not in SCALES:
    raise ValueError(f"data.scale={config.scale!r} is unknown; choose one of {SCALES}.")
  (train_x, train_y), (test_x, test_y), num_classes = load_raw_splits(config)
  preprocessing = _fit_scale(config.scale, train_x)  # every fitted array: the serving input
  processed = []
  for images in (train_x, test_x):
    x = _scale(images, config.scale, preprocessing)
    if config.pad_to:
      x = _pad(x, config.pad_to)
    processed.append(x)
  whiten = config.get("whiten", "")
  if whiten not in WHITENINGS:
    raise ValueError(f"data.whiten={whiten!r} is unknown; choose one of {WHITENINGS}.")
  if whiten == "gcn_zca":
    processed = [global_contrast_normalize(x) for x in processed]
    preprocessing.update(zca_fit(processed[0]))
    processed = [zca_apply(x, preprocessing) for x in processed]
  if config.subtract_mean:
    preprocessing["mean_image"] = processed[0].mean(axis=0, keepdims=True)
    processed = [x - preprocessing["mean_image"] for x in processed]
  name = config.name if config.source != "synthetic" else "synthetic"
  return Dataset(
    processed[0].astype(np.float32),
    train_y.astype(np.int32),
    processed[1].astype(np.float32),
    test_y.astype(np.int32),
    num_classes,
    f"{name} ({config.source})",
    preprocessing,
  )


# --- batching ----------------------------------------------------------------
def epoch_batches(num_examples: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
  """(steps, batch_size) indices of one epoch; the order depends only on (seed, epoch).

  The remainder is dropped so every batch has the same shape (no recompilation).
  """
  if batch_size > num_examples:
    raise ValueError(f"batch_size={batch_size} exceeds the {num_examples} examples.")
  order = np.random.default_rng([seed, epoch]).permutation(num_examples)
  steps = num_examples // batch_size
  return order[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def eval_batches(num_examples: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Indices and mask covering every example once; the last batch is padded (mask False)."""
  steps = -(-num_examples // batch_size)
  indices = np.zeros(steps * batch_size, np.int32)
  indices[:num_examples] = np.arange(num_examples)
  mask = np.arange(steps * batch_size) < num_examples
  return indices.reshape(steps, batch_size), mask.reshape(steps, batch_size)
