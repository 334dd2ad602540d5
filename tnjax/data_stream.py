"""Streaming input for datasets that do not fit in memory (ImageNet): TFDS + tf.data.

Each process reads its own slice of every split (tfds.split_for_jax_process) and
yields its part of the global batch as NumPy; the trainer assembles the global
batch across processes with jax.make_array_from_process_local_data. Train
images: resize the shorter side to `resize_to`, random crop `image_size`, random
flip; eval: resize and centre crop. Then per-channel ImageNet normalisation.

Order is a function of (seed, epoch): file order and shuffle seeded by them and
the random crops by (seed, epoch, example index), so a resumed run skips the
batches already seen in its epoch (`skip_batches`) and sees the same data as an
uninterrupted one, up to tf.data's shuffle-buffer determinism.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
EVAL_SPLITS = {"imagenet2012": "validation"}


@dataclasses.dataclass
class StreamInfo:
  """What the trainer needs before reading: sizes, classes, image shape (per process)."""
  name: str
  num_train: int
  num_test: int
  num_classes: int
  image_shape: tuple[int, int, int]


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    tf.config.set_visible_devices([], "GPU")  # keep accelerator memory for JAX
  except RuntimeError:
    pass
  return tf


def _load(config, split: str, *, shuffle_files: bool, seed: int):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  read_config = tfds.ReadConfig(shuffle_seed=seed, interleave_cycle_length=16)
  return tfds.load(config.name, split=tfds.split_for_jax_process(split), as_supervised=True,
                   data_dir=config.data_dir or None, shuffle_files=shuffle_files,
                   read_config=read_config)


def stream_info(config) -> StreamInfo:
  """Split sizes (this process's share) and classes of a streamed TFDS dataset."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  _tf()
  sizes = {}
  for key, split in (("train", "train"), ("test", EVAL_SPLITS.get(config.name, "test"))):
    dataset = _load(config, split, shuffle_files=False, seed=0)
    count = int(dataset.cardinality())
    if count < 0:  # unknown cardinality: count once
      count = sum(1 for _ in dataset)
    limit = config.max_train_examples if key == "train" else config.max_test_examples
    sizes[key] = min(count, limit) if limit else count
  num_classes = tfds.builder(config.name, data_dir=config.data_dir or None).info.features[
      "label"].num_classes
  return StreamInfo(config.name, sizes["train"], sizes["test"], int(num_classes),
                    (config.image_size, config.image_size, 3))


def _preprocess(tf, image, label, index, *, training: bool, size: int, resize_to: int, seed):
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
  image = (image - tf.constant(MEAN)) / tf.constant(STD)
  return tf.cast(image, tf.float32), tf.cast(label, tf.int32)


def train_batches(config, local_batch: int, seed: int, epoch: int, skip_batches: int = 0):
  """This process's train batches of one epoch as NumPy (images, labels), drop remainder."""
  tf = _tf()
  epoch_seed = seed * 100003 + epoch
  dataset = _load(config, "train", shuffle_files=True, seed=epoch_seed)
  if config.max_train_examples:
    dataset = dataset.take(config.max_train_examples)
  dataset = dataset.shuffle(16 * local_batch, seed=epoch_seed).enumerate()
  dataset = dataset.map(
      lambda i, xy: _preprocess(tf, xy[0], xy[1], i, training=True, size=config.image_size,
                                resize_to=config.resize_to, seed=epoch_seed),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  dataset = dataset.batch(local_batch, drop_remainder=True).skip(skip_batches)
  return dataset.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def eval_batches(config, local_batch: int):
  """This process's eval batches, each padded to local_batch: (images, labels, mask)."""
  tf = _tf()
  dataset = _load(config, EVAL_SPLITS.get(config.name, "test"), shuffle_files=False, seed=0)
  if config.max_test_examples:
    dataset = dataset.take(config.max_test_examples)
  dataset = dataset.enumerate().map(
      lambda i, xy: _preprocess(tf, xy[0], xy[1], i, training=False, size=config.image_size,
                                resize_to=config.resize_to, seed=0),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  for images, labels in dataset.batch(local_batch).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
    count = len(labels)
    pad = local_batch - count
    if pad:
      images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
      labels = np.concatenate([labels, np.zeros((pad,), labels.dtype)])
    yield images, labels, (np.arange(local_batch) < count).astype(np.float32)


def local_batch_size(global_batch: int) -> int:
  processes = jax.process_count()
  if global_batch % processes:
    raise ValueError(f"config.batch_size={global_batch} must divide over the {processes} "
                     "processes (each reads its own share of every batch).")
  return global_batch // processes
