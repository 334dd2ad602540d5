"""The one path layer: every workdir file goes through etils.epath (as Orbax does).

A path may be local or gs://. gs:// goes through gcsfs (fsspec), the backend
that honours STORAGE_EMULATOR_HOST, so tests run against a local GCS emulator
with the same code that runs against a bucket. (etils would otherwise pick
tf.io.gfile whenever TensorFlow is installed; EPATH_USE_TF=true restores that.)
GCS objects cannot be appended to or renamed atomically: files here are written
whole, and a write replaces the object in one request.
"""

from __future__ import annotations

import json
import os
import uuid

os.environ.setdefault("EPATH_USE_TF", "false")  # read by etils on first gs:// use

import fsspec  # noqa: E402
from etils import epath  # noqa: E402

# gcsfs caches directory listings per process; a workdir is shared with other processes
# (locks, a second trainer, sweeps, report scripts), so every listing must be fresh.
for _protocol in ("gs", "gcs"):
  fsspec.config.conf.setdefault(_protocol, {}).setdefault("use_listings_cache", False)

Path = epath.Path
REMOTE_PREFIXES = ("gs://", "s3://")


def is_remote(path) -> bool:
  return os.fspath(path).startswith(REMOTE_PREFIXES)


def workdir_path(path) -> epath.Path:
  """A run directory: $VARS expanded; local paths made absolute (never a local 'gs:/...')."""
  text = os.path.expandvars(os.fspath(path))
  if is_remote(text):
    return epath.Path(text)
  if "://" in text:
    raise ValueError(f"workdir {text!r}: only local paths and gs:// (or s3://) URLs are supported.")
  return epath.Path(os.path.abspath(text))


def read_json(path, default=None):
  path = epath.Path(path)
  if not path.exists():
    return default
  return json.loads(path.read_text())


def write_text(path, text: str) -> None:
  """Writes a whole file so that readers see the old or the new version, never a part."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  if is_remote(path):  # an object upload replaces the object atomically
    path.write_text(text)
    return
  temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
  temporary.write_text(text)
  os.replace(temporary, path)


def write_json(path, obj) -> None:
  """Strict JSON (NaN and infinity refused), written whole."""
  write_text(path, json.dumps(obj, indent=1, allow_nan=False, default=str) + "\n")


def read_jsonl(path) -> list[dict]:
  path = epath.Path(path)
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
