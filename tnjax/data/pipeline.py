"""One input object for the trainer, whatever the source.

In memory (MNIST, CIFAR): the whole dataset lives on the device(s) as `arrays`;
a training batch reference is an index vector and `fetch_train` gathers it
inside the jitted step, so no image crosses the host boundary after loading.
Streamed (ImageNet): `arrays` is empty, a reference is the global batch itself
(assembled from every process's share) and the fetch is the identity.
Either way the order of every epoch is a function of (seed, epoch), so the
references from any start step equal those of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp

from tnjax import sharding as sharding_lib
from tnjax.data import eval_pipeline
from tnjax.data import memory
from tnjax.data import stream


@dataclasses.dataclass
class Input:
  """What the training loop needs of its data.

  Attributes:
    name: shown in the run's header.
    image_shape: (H, W, C) of one example.
    num_classes: output classes.
    num_train: training examples per epoch (this process's share when streamed).
    num_test: test examples (the largest process share when streamed).
    steps_per_epoch: batches per epoch, the remainder dropped (fixed shapes).
    arrays: device-resident pytree the fetch functions read (empty when streamed).
    train_refs: start_step -> references for steps start_step, start_step+1, ... across epochs.
    eval_refs: () -> references covering the test split once.
    fetch_train: (arrays, reference) -> (images, labels); traced into the train step.
    fetch_eval: (arrays, reference) -> (images, labels, mask); traced into the eval step.
  """

  name: str
  image_shape: tuple[int, int, int]
  num_classes: int
  num_train: int
  num_test: int
  steps_per_epoch: int
  arrays: Any
  train_refs: Callable[[int], Iterator]
  eval_refs: Callable[[], Iterator]
  fetch_train: Callable
  fetch_eval: Callable
  # The eval pipeline's steps (eval_pipeline.record) and the arrays they fitted on the
  # train split (mean image, ZCA, ...): the trainer saves both in the workdir at the start.
  pipeline: dict = dataclasses.field(default_factory=dict)
  preprocessing: dict = dataclasses.field(default_factory=dict)


def gather_train(arrays, indices):
  images, labels = arrays["train"]
  return images[indices], labels[indices]


def gather_eval(arrays, reference):
  (images, labels), (indices, mask) = arrays["test"], reference
  return images[indices], labels[indices], mask


def _identity(arrays, reference):
  del arrays
  return reference


def _check_batch(config, num_train: int) -> None:
  if config.batch_size > num_train:
    raise ValueError(
      f"config.batch_size={config.batch_size} exceeds the {num_train} training "
      "examples; lower it or use more data."
    )


def _in_memory(config, mesh, fitted=None) -> Input:
  dataset = memory.load_dataset(config.data, fitted)
  num_train = len(dataset.train_labels)
  _check_batch(config, num_train)
  put = (
    jnp.asarray
    if mesh is None
    else functools.partial(sharding_lib.put_global, sharding=sharding_lib.replicated(mesh))
  )
  arrays = {
    "train": (put(dataset.train_images), put(dataset.train_labels)),
    "test": (put(dataset.test_images), put(dataset.test_labels)),
  }
  steps = num_train // config.batch_size

  def train_refs(start_step):
    epoch, done = divmod(start_step, steps)
    while True:
      yield from memory.epoch_batches(num_train, config.batch_size, config.seed, epoch)[done:]
      epoch, done = epoch + 1, 0

  def eval_refs():
    return zip(*memory.eval_batches(len(dataset.test_labels), config.eval_batch_size))

  return Input(
    dataset.name,
    dataset.image_shape,
    dataset.num_classes,
    num_train,
    len(dataset.test_labels),
    steps,
    arrays,
    train_refs,
    eval_refs,
    gather_train,
    gather_eval,
    eval_pipeline.record(config.data),
    dataset.preprocessing,
  )


def _streamed(config, mesh) -> Input:
  info = stream.stream_info(config.data)
  local_batch = stream.local_batch_size(config.batch_size)
  _check_batch(config, info.num_train * jax.process_count())
  steps = info.num_train // local_batch
  # Each process's part of the batch becomes its shards of one global array.
  to_device = (
    jnp.asarray
    if mesh is None
    else functools.partial(
      jax.make_array_from_process_local_data, sharding_lib.batch_sharding(mesh)
    )
  )

  def train_refs(start_step):
    epoch, done = divmod(start_step, steps)
    while True:
      batches = stream.train_batches(config.data, local_batch, config.seed, epoch, done)
      for _, (x, y) in zip(range(steps - done), batches):
        yield to_device(x), to_device(y)
      epoch, done = epoch + 1, 0

  def eval_refs():
    num_batches = -(-info.num_test // local_batch)
    for x, y, m in stream.eval_batches(config.data, local_batch, num_batches):
      yield to_device(x), to_device(y), to_device(m)

  return Input(
    f"{info.name} (streamed per process)",
    info.image_shape,
    info.num_classes,
    info.num_train,
    info.num_test,
    steps,
    {},
    train_refs,
    eval_refs,
    _identity,
    _identity,
    eval_pipeline.record(config.data),
  )


def make_input(config, mesh=None, fitted: dict | None = None) -> Input:
  """The input of config.data (in memory unless data.source='tfds_stream'); `fitted`: the
  run's preprocessing arrays from its first start (memory.load_dataset)."""
  if config.data.source == memory.STREAM_SOURCE:  # fits nothing: ImageNet's fixed statistics
    return _streamed(config, mesh)
  return _in_memory(config, mesh, fitted)
