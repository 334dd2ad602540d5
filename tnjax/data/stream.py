"""Streaming input for datasets that do not fit in memory (ImageNet): TFDS + tf.data.

Each process reads its own slice of every split (tfds.even_splits by
jax.process_index()) and yields its part of the global batch as NumPy; the
trainer assembles the global batch across processes with
jax.make_array_from_process_local_data. Every process runs the same number of
steps: an epoch is as many batches as the smallest slice holds, and eval pads
the shorter slices with fully masked batches. Train images: resize the shorter
side to `resize_to`, random crop `image_size`, random flip; eval: resize and
centre crop. Then per-channel ImageNet normalisation.

Order is a function of (seed, epoch): file order and shuffle seeded by them and
the random crops by (seed, epoch, example index), so a resumed run skips the
examples already seen in its epoch (`skip_batches`, before JPEG decoding, so
skipping is cheap) and sees exactly the batches of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools

import jax
import numpy as np
from absl import logging as absl_logging

from tnjax import errors, extras

# Input conventions of pretrained ImageNet weights, on 0-255 RGB pixels:
# (channel order, mean, std). 'imagenet': torchvision / timm models. 'caffe': the
# Caffe VGG weights (and their Keras / MatConvNet conversions): BGR, mean only.
NORMALIZATIONS = {
  "imagenet": (
    "rgb",
    (0.485 * 255, 0.456 * 255, 0.406 * 255),
    (0.229 * 255, 0.224 * 255, 0.225 * 255),
  ),
  "caffe": ("bgr", (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
}
EVAL_SPLITS = {"imagenet2012": "validation"}


@dataclasses.dataclass
class StreamInfo:
  """What the trainer needs before reading: sizes, classes, image shape.

  num_train: train examples every process has (its epoch); num_test: the most
  eval examples any process has (its eval batches are padded up to that).
  """

  name: str
  num_train: int
  num_test: int
  num_classes: int
  image_shape: tuple[int, int, int]


def _tf():
  tf = extras.require("tensorflow", "data.source='tfds_stream'")

  try:
    tf.config.set_visible_devices([], "GPU")  # keep accelerator memory for JAX
  except RuntimeError:
    pass
  return tf


def _load(config, split: str, *, shuffle_files: bool, seed: int):
  """This process's slice of `split`, images still encoded (decoded after skip / shuffle)."""
  tfds = extras.require("tensorflow_datasets", "data.source='tfds_stream'")

  read_config = tfds.ReadConfig(shuffle_seed=seed, interleave_cycle_length=16)
  process_split = tfds.even_splits(split, n=jax.process_count())[jax.process_index()]
  return tfds.load(
    config.name,
    split=process_split,
    as_supervised=True,
    data_dir=config.data_dir or None,
    shuffle_files=shuffle_files,
    read_config=read_config,
    decoders={"image": tfds.decode.SkipDecoding()},
  )


# Datasets TFDS cannot download: the files a user must put in <data_dir>/downloads/manual.
MANUAL_FILES = {"imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")}


def not_prepared_message(name: str, builder_dir: str) -> str:
  """What to do when `name` is not prepared: where the files go, the command, the smoke run."""
  data_dir = str(builder_dir).split(f"/{name}/")[0].split(f"/{name}")[0]
  manual = MANUAL_FILES.get(name)
  where = (
    f"put {' and '.join(manual)} in {data_dir}/downloads/manual/, then "
    if manual
    else "on a machine with network, "
  )
  return (
    f"TFDS dataset {name!r} is not prepared in {data_dir} (config.data.data_dir, or "
    f"TFDS_DATA_DIR); {where}run `python -m tnjax.data.prepare --data_dir {data_dir} "
    "CONFIG` (launch/prepare_data.sh prepares it into a bucket), or try the config "
    "first on random images with its `synthetic` argument (e.g. configs/tt_vgg16.py:synthetic)."
  )


@contextlib.contextmanager
def _quiet_absl():
  level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    yield
  finally:
    absl_logging.set_verbosity(level)


def check_prepared(config):
  """The TFDS builder of config.name (a data config); a dataset not prepared in data_dir is
  a one-line UserError saying where its files go and how to prepare it."""
  tfds = extras.require("tensorflow_datasets", "data.source='tfds_stream'")

  _tf()
  with _quiet_absl():  # TFDS warns about a missing dataset_info.json: we say it better
    builder = tfds.builder(config.name, data_dir=config.data_dir or None)
    prepared, builder_dir = builder.is_prepared(), builder.data_dir
  if not prepared and not _mocked(tfds):
    raise errors.UserError(not_prepared_message(config.name, builder_dir))
  return builder


def _mocked(tfds) -> bool:
  """tfds.testing.mock_data replaces the builders' data (the tests' stand-in for TFDS)."""
  prepare = tfds.core.dataset_builder.DatasetBuilder.download_and_prepare
  return getattr(prepare, "__name__", "") == "mock_download_and_prepare"


def shares(total: int, processes: int, limit: int = 0) -> tuple[int, int]:
  """(smallest, largest) per-process slice of `total` examples (even_splits), capped at `limit`."""
  low, high = total // processes, -(-total // processes)
  return (min(low, limit), min(high, limit)) if limit else (low, high)


def stream_info(config) -> StreamInfo:
  """Split sizes and classes of a streamed TFDS dataset (max_*_examples cap each process)."""

  info = check_prepared(config).info
  sizes = {}
  for key, split in (("train", "train"), ("test", EVAL_SPLITS.get(config.name, "test"))):
    try:
      total = int(info.splits[split].num_examples)
    except KeyError:  # no split metadata (tfds mock data): count this process's slice
      dataset = _load(config, split, shuffle_files=False, seed=0)
      count = int(dataset.cardinality())
      total = (count if count >= 0 else sum(1 for _ in dataset)) * jax.process_count()
    limit = config.max_train_examples if key == "train" else config.max_test_examples
    sizes[key] = shares(total, jax.process_count(), limit)
  return StreamInfo(
    config.name,
    sizes["train"][0],
    sizes["test"][1],
    int(info.features["label"].num_classes),
    (config.image_size, config.image_size, 3),
  )


def _preprocess(
  tf, image, label, index, *, training: bool, size: int, resize_to: int, seed, normalization
):
  image = tf.io.decode_image(image, channels=3, expand_animations=False)
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = resize_to / tf.reduce_min(shape)
  new_shape = tf.cast(tf.math.ceil(shape * scale), tf.int32)
  image = tf.image.resize(image, tf.maximum(new_shape, size), method="bilinear")
  if training:
    example_seed = tf.stack([tf.cast(seed, tf.int64), index])
    image = tf.image.stateless_random_crop(image, (size, size, 3), seed=example_seed)
    image = tf.image.stateless_random_flip_left_right(image, seed=example_seed + 1)
  else:
    image = tf.image.resize_with_crop_or_pad(image, size, size)
  order, mean, std = NORMALIZATIONS[normalization]
  if order == "bgr":
    image = image[..., ::-1]
  image = (image - tf.constant(mean)) / tf.constant(std)
  return tf.cast(image, tf.float32), tf.cast(label, tf.int32)


def train_batches(config, local_batch: int, seed: int, epoch: int, skip_batches: int = 0):
  """This process's train batches of one epoch as NumPy (images, labels), drop remainder."""
  tf = _tf()
  epoch_seed = seed * 100003 + epoch
  dataset = _load(config, "train", shuffle_files=True, seed=epoch_seed)
  if config.max_train_examples:
    dataset = dataset.take(config.max_train_examples)
  # Shuffled while still encoded (small); the index seeds each example's crop, so
  # skipping before decoding leaves the remaining batches unchanged.
  dataset = dataset.shuffle(16 * local_batch, seed=epoch_seed).enumerate()
  dataset = dataset.skip(skip_batches * local_batch).map(
    lambda i, xy: _preprocess(
      tf,
      xy[0],
      xy[1],
      i,
      training=True,
      size=config.image_size,
      resize_to=config.resize_to,
      seed=epoch_seed,
      normalization=config.get("normalization", "imagenet"),
    ),
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=True,
  )
  dataset = dataset.batch(local_batch, drop_remainder=True)
  return dataset.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def eval_batches(config, local_batch: int, num_batches: int | None = None):
  """This process's eval batches, each padded to local_batch: (images, labels, mask).

  With num_batches, exactly that many (fully masked ones after the data run out), so
  every process joins the same number of global eval steps.
  """
  tf = _tf()
  dataset = _load(config, EVAL_SPLITS.get(config.name, "test"), shuffle_files=False, seed=0)
  if config.max_test_examples:
    dataset = dataset.take(config.max_test_examples)
  dataset = dataset.enumerate().map(
    lambda i, xy: _preprocess(
      tf,
      xy[0],
      xy[1],
      i,
      training=False,
      size=config.image_size,
      resize_to=config.resize_to,
      seed=0,
      normalization=config.get("normalization", "imagenet"),
    ),
    num_parallel_calls=tf.data.AUTOTUNE,
    deterministic=True,
  )
  batches = dataset.batch(local_batch).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()
  if num_batches is not None:  # no data left: empty batches (count 0)
    empty = (
      np.zeros((0, config.image_size, config.image_size, 3), np.float32),
      np.zeros((0,), np.int32),
    )
    batches = itertools.islice(itertools.chain(batches, itertools.repeat(empty)), num_batches)
  for images, labels in batches:
    count = len(labels)
    pad = local_batch - count
    if pad:
      images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
      labels = np.concatenate([labels, np.zeros((pad,), labels.dtype)])
    yield images, labels, (np.arange(local_batch) < count).astype(np.float32)


def local_batch_size(global_batch: int) -> int:
  processes = jax.process_count()
  if global_batch % processes:
    raise ValueError(
      f"config.batch_size={global_batch} must divide over the {processes} "
      "processes (each reads its own share of every batch)."
    )
  return global_batch // processes
