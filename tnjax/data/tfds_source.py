"""Small TFDS datasets loaded whole (TensorFlow and TFDS come with tnjax[tfds])."""

from __future__ import annotations

import socket

import numpy as np

from tnjax import errors, extras

TFDS_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100")


def load_tfds(config):
  """Both splits of data.name from TFDS, whole, and its class count."""
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
