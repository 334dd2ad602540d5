"""Loading trained dense weights into a model (e.g. VGG's conv part for Novikov's TT-VGG).

A weights file is an .npz or .h5 of named arrays. Names are the model's parameter
paths joined by '/', e.g. 'conv1_1/kernel', 'conv1_1/bias' (HWIO kernels, (in, out)
dense weights); `rename` maps names in the file to model paths where they differ.
The Keras applications' VGG files (legacy .h5 and Keras 3 .weights.h5) are read under
these names (keras_weights.py). Every array must land on a parameter of the same
shape, so a typo is an error that lists the names the model has, never a silently
skipped layer; the one exception is a layer the model keeps in a factorised format
(a TT FC6 where the file has a dense fc6): it keeps its own initialisation, and the
loader says so. Parameters the file does not cover keep their init.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from flax import nnx

from tnjax import errors
from tnjax import fileio
from tnjax.training import keras_weights


def read_weights(path: str) -> dict[str, np.ndarray]:
  """Named arrays of an .npz or .h5 file (HDF5 groups joined by '/')."""
  if not fileio.Path(path).exists():
    raise errors.UserError(
      f"pretrained weights file {path!r} does not exist; fix config.pretrained.path."
    )
  # Local files are read in place; gs:// ones through the path layer, into memory.
  source = io.BytesIO(fileio.Path(path).read_bytes()) if fileio.is_remote(path) else path
  if not path.endswith((".npz", ".h5", ".hdf5")):
    raise errors.UserError(
      f"pretrained weights {path!r}: use an .npz or .h5 file of named arrays (or a Keras "
      "applications VGG .h5 / .weights.h5)."
    )
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
    if keras_weights.is_keras_vgg(f):
      return keras_weights.read_keras_vgg(f)
    f.visititems(
      lambda name, item: (
        arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
      )
    )
  return arrays


def describe_weights(path: str) -> tuple[list[str], str | None]:
  """(the array names a weights file holds, the input normalization it expects or None),
  read without loading the arrays: what the config check needs before any data loads."""
  if not fileio.Path(path).exists():
    raise errors.UserError(
      f"pretrained weights file {path!r} does not exist; fix config.pretrained.path."
    )
  source = io.BytesIO(fileio.Path(path).read_bytes()) if fileio.is_remote(path) else path
  try:
    if path.endswith(".npz"):
      with np.load(source, allow_pickle=False) as data:
        return list(data.files), None
    if path.endswith((".h5", ".hdf5")):
      import h5py  # pylint: disable=g-import-not-at-top

      with h5py.File(source, "r") as f:
        if keras_weights.is_keras_vgg(f):
          return keras_weights.keras_vgg_names(f), keras_weights.INPUT_NORMALIZATION
        names = []
        f.visit(lambda name: names.append(name) if isinstance(f[name], h5py.Dataset) else None)
        return names, None
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise errors.UserError(
      f"pretrained weights {path} cannot be read ({type(e).__name__}: "
      f"{' '.join(str(e).split())[:120]}); the file is damaged or not what its name says."
    ) from None
  raise errors.UserError(
    f"pretrained weights {path!r}: use an .npz or .h5 file of named arrays (or a Keras "
    "applications VGG .h5 / .weights.h5)."
  )


def load_pretrained(model: nnx.Module, path: str, rename: dict | None = None) -> list[str]:
  """Copies the file's arrays into the model's matching parameters; returns the paths set."""
  return load_arrays(model, read_weights(path), rename, source=path)


def factorized_layers(params, names) -> dict[str, list[str]]:
  """{layer: its array names} for names that address a layer the model holds in another
  format: 'fc6/kernel' where the model's fc6 has cores, not a kernel."""
  skipped = {}
  for name in names:
    if name in params or "/" not in name:
      continue
    layer, leaf = name.rsplit("/", 1)
    holds_layer = any(p.startswith(layer + "/") for p in params)
    if holds_layer and leaf in ("kernel", "bias") and f"{layer}/kernel" not in params:
      skipped.setdefault(layer, []).append(name)
  return skipped


def param_names(model: nnx.Module) -> list[str]:
  """The model's variables as the '/'-joined names weights files use (random streams left out)."""
  variables = nnx.state(model, nnx.Not(nnx.RngState))
  return ["/".join(map(str, p)) for p, _ in nnx.to_flat_state(variables)]


def load_arrays(
  model: nnx.Module, arrays: dict, rename: dict | None = None, *, source: str = "arrays"
) -> list[str]:
  """Copies named arrays ('conv1/kernel': array) into the model's variables of those names.

  The names of tnjax.training.checkpoint.model_arrays and of pretrained files (parameters,
  and also BatchNorm statistics or sketch sign matrices if given); every array
  must match a variable of the same shape, except the arrays of a layer the model
  holds in a factorised format (see `factorized_layers`), which are left out. Returns
  the paths set.
  """
  path = source
  rename = dict(rename or {})
  arrays = {rename.get(n, n): a for n, a in arrays.items()}
  variables = nnx.state(model, nnx.Not(nnx.RngState))  # random streams are not weights
  params = {"/".join(map(str, p)): v for p, v in nnx.to_flat_state(variables)}
  for layer in factorized_layers(params, arrays):  # the whole layer, bias too: it belonged
    arrays = {n: a for n, a in arrays.items() if not n.startswith(layer + "/")}  # to the kernel
  unknown = sorted(n for n in arrays if n not in params)
  if unknown:
    raise errors.UserError(
      f"{path}: {len(unknown)} array(s) match no model parameter: {unknown[:10]}; "
      f"the model's parameters are {sorted(params)[:40]}"
      f"{' ...' if len(params) > 40 else ''}. Fix the names or pass a rename map."
    )
  mismatched = [
    f"{n}: file {a.shape} vs model {params[n].shape}"
    for n, a in arrays.items()
    if a.shape != params[n].shape
  ]
  if mismatched:
    raise errors.UserError(f"{path}: shapes differ for {mismatched}.")
  updates = {n: np.asarray(a).astype(params[n].get_value().dtype) for n, a in arrays.items()}
  flat = dict(nnx.to_flat_state(variables))
  for key in list(flat):
    joined = "/".join(map(str, key))
    if joined in updates:
      flat[key].set_value(updates[joined])
      if flat[key].get_metadata().get("lr_scale", 1.0) != 1.0:
        # A per-parameter rate (BTT's muP rates) is for training from the layer's own
        # init; loaded weights (a compressed run's fit, a pretrained file) fine-tune at
        # the model's rate, as a fitted layer built in Python does.
        flat[key].set_metadata("lr_scale", 1.0)
  nnx.update(model, nnx.from_flat_state(flat))
  return sorted(updates)
