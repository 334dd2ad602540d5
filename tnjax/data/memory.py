"""Input: TFDS, MNIST-format IDX files or synthetic data, held in memory.

Small image datasets (MNIST, Fashion-MNIST, CIFAR) fit in host and device
memory, so they are loaded once into NumPy, preprocessed once, and batched by
index arrays: no per-example Python, and a batch is a gather on the device.
The order of an epoch is a pure function of (seed, epoch), which makes resumed
runs identical to uninterrupted ones.
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections
import numpy as np

from tnjax import errors
from tnjax.data import idx, preprocess, synthetic, tfds_source

IN_MEMORY_SOURCES = ("tfds", "idx", "synthetic")  # whole data sets on the device
STREAM_SOURCE = "tfds_stream"  # ImageNet-sized TFDS data, read per process (stream.py)
SOURCES = IN_MEMORY_SOURCES + (STREAM_SOURCE,)  # every config.data.source
TFDS_SOURCES = ("tfds", STREAM_SOURCE)  # those that read TFDS (and need the [tfds] extra)
SCALES = ("unit", "symmetric", "standardize")
# Known class counts, so a subset of IDX files that lacks some label still gets the full output layer.
NUM_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100}


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
  if config.source == STREAM_SOURCE:
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


def load_raw_splits(config):
  """((train images, labels), (test images, labels), classes) as the data set stores them
  (uint8, no preprocessing), cut to max_*_examples: what a served model is given."""
  if config.source not in IN_MEMORY_SOURCES:
    raise ValueError(
      f"data.source={config.source!r} is unknown; choose one of {IN_MEMORY_SOURCES}."
    )
  if config.source == "tfds":
    splits, num_classes = tfds_source.load_tfds(config)
  elif config.source == "idx":
    splits, num_classes = idx.load_idx(config, NUM_CLASSES.get(config.name, 0))
  else:
    splits, num_classes = synthetic.make_synthetic(config)
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


def load_dataset(config, fitted: dict | None = None) -> Dataset:
  """Loads and preprocesses both splits: scale -> pad -> [GCN + ZCA] -> subtract the train
  mean image (eval_pipeline.py replays the same steps for serving).

  `fitted`: arrays a run fitted at its first start (its preprocessing.npz), used instead of
  fitting them again, so that a resumed run or a compressed run's fine-tune sees its
  inputs as the weights were trained on them, whatever training examples it now reads.
  """
  if config.scale not in SCALES:
    raise ValueError(f"data.scale={config.scale!r} is unknown; choose one of {SCALES}.")
  (train_x, train_y), (test_x, test_y), num_classes = load_raw_splits(config)
  # Every fitted array is part of the serving input.
  preprocessing = {**preprocess.fit_scale(config.scale, train_x), **(fitted or {})}
  processed = []
  for images in (train_x, test_x):
    x = preprocess.scale(images, config.scale, preprocessing)
    if config.pad_to:
      x = preprocess.pad(x, config.pad_to)
    processed.append(x)
  whiten = config.get("whiten", "")
  if whiten not in preprocess.WHITENINGS:
    raise ValueError(f"data.whiten={whiten!r} is unknown; choose one of {preprocess.WHITENINGS}.")
  if whiten == "gcn_zca":
    processed = [preprocess.global_contrast_normalize(x) for x in processed]
    if not _fits(preprocessing.get("zca_matrix"), (math.prod(processed[0].shape[1:]),) * 2):
      preprocessing.update(preprocess.zca_fit(processed[0]))
    processed = [preprocess.zca_apply(x, preprocessing) for x in processed]
  if config.subtract_mean:
    if not _fits(preprocessing.get("mean_image"), (1, *processed[0].shape[1:])):
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


def _fits(array, shape) -> bool:
  """Whether a stored fitted array has the shape the images now need (a config change that
  pads or crops otherwise makes it fitted again)."""
  return array is not None and tuple(np.shape(array)) == tuple(shape)


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
