"""The one path layer: every workdir file goes through etils.epath (as Orbax does).

A path may be local or gs:// (the `[gcs]` extra). Programs call `configure_for_programs()`
first: gs:// then goes through gcsfs (fsspec), the backend that honours
STORAGE_EMULATOR_HOST, so tests run against a local GCS emulator with the same code that
runs against a bucket, and every directory listing is fresh. Importing tnjax changes no
setting; a library user keeps etils' own choice (tf.io.gfile when TensorFlow is installed).
GCS objects cannot be appended to or renamed atomically: files here are written
whole, and a write replaces the object in one request.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import uuid
import warnings

from etils import epath

from tnjax import extras
from tnjax.errors import UserError


def configure_for_programs() -> None:
  """What tnjax's programs set before their first gs:// path (a user's own settings win)."""
  os.environ.setdefault("EPATH_USE_TF", "false")  # read by etils at each gs:// use
  import fsspec  # pylint: disable=g-import-not-at-top

  # gcsfs caches directory listings per process; a workdir is shared with other processes
  # (locks, a second trainer, sweeps, report scripts), so every listing must be fresh.
  for protocol in ("gs", "gcs"):
    fsspec.config.conf.setdefault(protocol, {}).setdefault("use_listings_cache", False)


Path = epath.Path
# gs:// only: a fleet's run lock needs GCS's conditional writes (object generations).
REMOTE_PREFIXES = ("gs://",)


def is_remote(path) -> bool:
  return os.fspath(path).startswith(REMOTE_PREFIXES)


def check_url(path, what: str) -> None:
  """A gs:// `path` needs gcsfs (one line naming the extra); any other URL is refused."""
  text = os.fspath(path)
  if is_remote(text):
    extras.check_installed("gcsfs", f"the gs:// path {text}")
  elif "://" in text:
    raise UserError(f"{what} {text!r}: only local paths and gs:// URLs are supported.")


def workdir_path(path) -> epath.Path:
  """A run directory: $VARS expanded; local paths made absolute (never a local 'gs:/...')."""
  text = os.path.expandvars(os.fspath(path))
  check_url(text, "workdir")
  return epath.Path(text if is_remote(text) else os.path.abspath(text))


# OS errors a user fixes by choosing another place or freeing space: what to say about each.
_WRITE_HINTS = {
  errno.ENOSPC: "the disk is full; free space or use a --workdir on another disk",
  errno.EDQUOT: "the disk quota is used up; free space or use a --workdir elsewhere",
  errno.EACCES: "permission denied; use a --workdir you can write to",
  errno.EPERM: "permission denied; use a --workdir you can write to",
  errno.EROFS: "the file system is read-only; use a writable --workdir",
  errno.ENOTDIR: "a part of the path is a file, not a directory; use another --workdir",
  errno.EEXIST: "a part of the path is a file, not a directory; use another --workdir",
  errno.EISDIR: "the path is a directory; use another --workdir",
}


def unwritable(error: OSError, path) -> UserError | None:
  """A one-line UserError for an OSError a user can fix (full disk, no permission, ...)."""
  hint = _WRITE_HINTS.get(error.errno)
  if hint is None:
    return None
  return UserError(f"cannot write {os.fspath(path)}: {error.strerror or error} ({hint}).")


def check_workdir(path) -> epath.Path:
  """The workdir as a path, created; a place that cannot hold one is a one-line UserError."""
  workdir = workdir_path(path)
  if is_remote(workdir):
    return workdir
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    probe = workdir / f".write_test.{uuid.uuid4().hex[:8]}"
    probe.write_text("")
    probe.unlink()
  except FileExistsError:
    raise UserError(
      f"workdir {os.fspath(workdir)} is a file, not a directory; use another --workdir."
    ) from None
  except OSError as e:
    raise (unwritable(e, workdir) or e) from None
  return workdir


def check_output_file(path, flag: str, suffix: str = "") -> epath.Path:
  """An output file a program will write (--out, --merge, --tflite), checked before any work:
  not a directory, no file where a parent directory must be, the right suffix. Creates
  nothing."""
  text = os.fspath(path)
  if not text:
    raise UserError(f"{flag} is empty; give the file to write.")
  if text.endswith("/"):
    raise UserError(f"{flag} {text} names a directory; give a file path inside it.")
  out = workdir_path(text)
  if not is_remote(out) and out.is_dir():
    raise UserError(f"{flag} {text} is a directory; give a file path inside it.")
  if suffix and not text.endswith(suffix):
    raise UserError(f"{flag} {text!r}: give a path ending in {suffix}.")
  if is_remote(out):
    return out
  for parent in out.parents:
    if parent.exists():
      if not parent.is_dir():
        raise UserError(f"{flag} {text}: {parent} is a file, not a directory; give another path.")
      break
  if out.exists():  # rewriting an output is what a rerun does; say so, once
    print(f"tnjax: note: {flag} {text} exists and will be replaced.", file=sys.stderr, flush=True)
  return out


def read_json(path, default=None):
  path = epath.Path(path)
  if not path.exists():
    return default
  text = path.read_text()
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise UserError(
      f"{os.fspath(path)} is not valid JSON ({e.msg} at line {e.lineno}); restore or delete it."
    ) from None


def write_bytes(path, data: bytes) -> None:
  """Writes a whole file so that readers see the old or the new version, never a part.

  A write that fails leaves no temporary file behind; a full disk or a path that
  cannot be written is a one-line UserError naming the file.
  """
  path = epath.Path(path)
  temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_remote(path):  # an object upload replaces the object atomically
      path.write_bytes(data)
      return
    temporary.write_bytes(data)
    os.replace(temporary, path)
  except OSError as e:
    if not is_remote(path):
      temporary.unlink(missing_ok=True)
    raise (unwritable(e, path) or e) from e


def write_text(path, text: str) -> None:
  """write_bytes for text (UTF-8)."""
  write_bytes(path, text.encode())


def append_text(path, text: str) -> None:
  """Appends to a local file (GCS objects cannot be appended to: write them whole)."""
  if is_remote(path):
    raise ValueError(f"{os.fspath(path)}: append_text takes local paths only.")
  try:
    with open(os.fspath(path), "a", encoding="utf-8") as f:
      f.write(text)
  except OSError as e:
    raise (unwritable(e, path) or e) from e


def write_npz(path, arrays: dict) -> None:
  """Named arrays as one .npz, written whole (local or gs://)."""
  import io  # pylint: disable=g-import-not-at-top

  import numpy as np  # pylint: disable=g-import-not-at-top

  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  write_bytes(path, buffer.getvalue())


def read_npz(path) -> dict:
  """The arrays of an .npz file (local or gs://); {} when it does not exist."""
  import io  # pylint: disable=g-import-not-at-top

  import numpy as np  # pylint: disable=g-import-not-at-top

  path = epath.Path(path)
  if not path.exists():
    return {}
  with np.load(io.BytesIO(path.read_bytes())) as arrays:
    return {name: arrays[name] for name in arrays.files}


def write_json(path, obj) -> None:
  """Strict JSON (NaN and infinity refused), written whole."""
  write_text(path, json.dumps(obj, indent=1, allow_nan=False, default=str) + "\n")


def read_jsonl(path) -> list[dict]:
  """The records of a JSON-lines file. A last line cut short (a write torn by a crash)
  is dropped with a warning; a damaged line before it is a UserError naming the line."""
  path = epath.Path(path)
  if not path.exists():
    return []
  lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
  records = []
  for i, (number, line) in enumerate(lines):
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError as e:
      if i == len(lines) - 1:
        warnings.warn(
          f"{os.fspath(path)}: its last line ({number}) is cut short ({e.msg}), as a write "
          "torn by a crash leaves it; dropped.",
          stacklevel=2,
        )
        break
      raise UserError(
        f"{os.fspath(path)} line {number} is not valid JSON ({e.msg}); restore the file, "
        "or delete the line and the ones after it."
      ) from None
  return records


# --- Conditional writes on GCS (object generations), for locks that a fleet can trust ---


@functools.cache
def _storage_client(emulator_host: str | None):
  """google-cloud-storage's client, made once per STORAGE_EMULATOR_HOST (which it honours:
  the tests' emulator, or None for the real service)."""
  del emulator_host  # the cache key: the client reads the variable when it is made
  storage = extras.require("google.cloud.storage", "a lock on a gs:// workdir")
  return storage.Client()


def _blob(path):
  bucket, _, key = os.fspath(path).removeprefix("gs://").partition("/")
  client = _storage_client(os.environ.get("STORAGE_EMULATOR_HOST"))
  return client.bucket(bucket).blob(key)


def _not_found_or_changed():
  from google.api_core import exceptions  # pylint: disable=g-import-not-at-top

  return exceptions.NotFound, exceptions.PreconditionFailed


def read_with_generation(path) -> tuple[str | None, int | None]:
  """(text, generation) of a gs:// object, or (None, None) if it does not exist."""
  blob = _blob(path)
  not_found, changed = _not_found_or_changed()
  for _ in range(5):  # the object may change between the two reads: read both again
    try:
      blob.reload()
      generation = blob.generation
      body = blob.download_as_bytes(if_generation_match=generation)
      return body.decode(), int(generation)
    except not_found:
      return None, None
    except changed:  # a newer generation was written meanwhile
      continue
  raise OSError(f"{os.fspath(path)} keeps changing; cannot read one version of it.")


def write_if_generation(path, text: str, generation: int) -> int | None:
  """Writes a gs:// object only if its generation is `generation` (0: only if it does not
  exist); returns the new generation, or None if another writer got there first."""
  blob = _blob(path)
  not_found, changed = _not_found_or_changed()
  try:
    blob.upload_from_string(
      text, content_type="application/json", if_generation_match=int(generation)
    )
  except (not_found, changed):
    return None
  return int(blob.generation)


def delete_if_generation(path, generation: int) -> bool:
  """Deletes a gs:// object only if its generation is still `generation`."""
  not_found, changed = _not_found_or_changed()
  try:
    _blob(path).delete(if_generation_match=int(generation))
  except (not_found, changed):
    return False
  return True
