"""Loading trained dense weights into a model (e.g. VGG's conv part for Novikov's TT-VGG).

A weights file is an .npz or .h5 of named arrays. Names are the model's parameter
paths joined by '/', e.g. 'conv1_1/kernel', 'conv1_1/bias' (HWIO kernels, (in, out)
dense weights); `rename` maps names in the file to model paths where they differ.
Every array in the file must land on a parameter of the same shape, so a typo is
an error that lists the names the model has, never a silently skipped layer.
Parameters the file does not cover (e.g. the new TT layers) keep their init.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from flax import nnx

from tnjax import errors
from tnjax import fileio


def read_weights(path: str) -> dict[str, np.ndarray]:
  """Named arrays of an .npz or .h5 file (HDF5 groups joined by '/')."""
  if not fileio.Path(path).exists():
    raise FileNotFoundError(f"Pretrained weights file {path!r} does not exist.")
  # Local files are read in place; gs:// ones through the path layer, into memory.
  source = io.BytesIO(fileio.Path(path).read_bytes()) if fileio.is_remote(path) else path
  if not path.endswith((".npz", ".h5", ".hdf5")):
    raise ValueError(f"Pretrained weights {path!r}: use an .npz or .h5 file of named arrays.")
  try:
    arrays = _read_npz(source) if path.endswith(".npz") else _read_h5(source)
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise errors.UserError(
      f"pretrained weights {path} cannot be read as {'.npz' if path.endswith('.npz') else 'HDF5'}"
      f" ({type(e).__name__}: {' '.join(str(e).split())[:120]}); the file is damaged or "
      "not what its name says."
    ) from None
  damaged = sorted(n for n, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all())
  if damaged:
    raise errors.UserError(
      f"pretrained weights {path}: {len(damaged)} array(s) hold NaN or infinite values "
      f"({', '.join(damaged[:5])}{' ...' if len(damaged) > 5 else ''}); the file is damaged."
    )
  return arrays


def _read_npz(source) -> dict[str, np.ndarray]:
  with np.load(source, allow_pickle=False) as data:
    return {name: data[name] for name in data.files}


def _read_h5(source) -> dict[str, np.ndarray]:
  import h5py  # pylint: disable=g-import-not-at-top

  arrays = {}
  with h5py.File(source, "r") as f:
    f.visititems(
      lambda name, item: (
        arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
      )
    )
  return arrays


def load_pretrained(model: nnx.Module, path: str, rename: dict | None = None) -> list[str]:
  """Copies the file's arrays into the model's matching parameters; returns the paths set."""
  return load_arrays(model, read_weights(path), rename, source=path)


def load_arrays(
  model: nnx.Module, arrays: dict, rename: dict | None = None, *, source: str = "arrays"
) -> list[str]:
  """Copies named arrays ('conv1/kernel': array) into the model's variables of those names.

  The names of tnjax.training.checkpoint.model_arrays and of pretrained files (parameters,
  and also BatchNorm statistics or sketch sign matrices if given); every array
  must match a variable of the same shape. Returns the paths set.
  """
  path = source
  rename = dict(rename or {})
  variables = nnx.state(model, nnx.Not(nnx.RngState))  # random streams are not weights
  params = {"/".join(map(str, p)): v for p, v in nnx.to_flat_state(variables)}
  unknown = sorted(rename.get(n, n) for n in arrays if rename.get(n, n) not in params)
  if unknown:
    raise ValueError(
      f"{path}: {len(unknown)} array(s) match no model parameter: {unknown[:10]}; "
      f"the model's parameters are {sorted(params)[:40]}"
      f"{' ...' if len(params) > 40 else ''}. Fix the names or pass a rename map."
    )
  mismatched = [
    f"{rename.get(n, n)}: file {a.shape} vs model {params[rename.get(n, n)].shape}"
    for n, a in arrays.items()
    if a.shape != params[rename.get(n, n)].shape
  ]
  if mismatched:
    raise ValueError(f"{path}: shapes differ for {mismatched}.")
  updates = {}
  for name, array in arrays.items():
    target = rename.get(name, name)
    updates[target] = np.asarray(array).astype(params[target].get_value().dtype)
  flat = dict(nnx.to_flat_state(variables))
  for key in list(flat):
    joined = "/".join(map(str, key))
    if joined in updates:
      flat[key].set_value(updates[joined])
  nnx.update(model, nnx.from_flat_state(flat))
  return sorted(updates)
