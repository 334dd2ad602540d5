"""MNIST's IDX format: the files of MNIST, Fashion-MNIST and Debian's dataset packages,
gzipped or plain, local or gs://."""

from __future__ import annotations

import gzip
import io
import zlib

import numpy as np

from tnjax import errors
from tnjax import fileio

IDX_FILES = {
  "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


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


def find_idx(directory: str, stem: str) -> str:
  for candidate in (stem + ".gz", stem):
    path = fileio.Path(directory) / candidate
    if path.exists():
      return str(path)
  expected = [n + ".gz" for pair in IDX_FILES.values() for n in pair]
  raise FileNotFoundError(
    f"{stem}[.gz] not found in data.idx_dir={directory!r}; it must hold "
    f"{expected} (gzipped or not)."
  )


def load_idx(config, known_classes: int = 0):
  """Both splits from data.idx_dir, and the class count (at least `known_classes`, the
  count data.name is known to have, so a subset lacking some label keeps every output)."""
  if not config.idx_dir:
    raise ValueError("data.source='idx' needs data.idx_dir, the directory of the IDX files.")
  splits = {}
  for split, (images_stem, labels_stem) in IDX_FILES.items():
    images = read_idx(find_idx(config.idx_dir, images_stem))
    labels = read_idx(find_idx(config.idx_dir, labels_stem)).astype(np.int32)
    if images.ndim == 3:
      images = images[..., None]
    if len(images) != len(labels):
      raise errors.UserError(
        f"IDX {split} split in {config.idx_dir}: {len(images)} images but {len(labels)} labels; "
        f"the files {images_stem} and {labels_stem} must come from the same dataset."
      )
    splits[split] = (images, labels)
  largest_label = int(max(splits["train"][1].max(), splits["test"][1].max()))
  known = known_classes
  if known and largest_label >= known:
    raise errors.UserError(
      f"IDX labels in {config.idx_dir} reach {largest_label}, but "
      f"data.name={config.name!r} has {known} classes; fix data.name."
    )
  return splits, max(known, largest_label + 1)
