"""Optional dependencies: what each extra adds, and the one line a missing one gets.

The core (`pip install tnjax`) trains on IDX or synthetic data, compresses, evaluates,
loads and exports with jax.export. TFDS input, TFLite export, gs:// paths, W&B and the
report scripts' plots each need an extra; `require` names the one to install.
"""

from __future__ import annotations

import importlib
import importlib.util

from tnjax import errors

# module -> the extra that installs it
EXTRA_OF = {
  "tensorflow": "tfds",
  "tensorflow_datasets": "tfds",
  "gcsfs": "gcs",
  "google.cloud.storage": "gcs",
  "wandb": "wandb",
  "matplotlib": "experiments",
}


def require(module: str, feature: str, extra: str | None = None):
  """`import module`, or a UserError: '<feature> needs <module>: pip install "tnjax[<extra>]"'.

  Only a missing module is translated; an installed module that fails to import is a
  broken installation and keeps its own traceback.
  """
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as e:
    if e.name is None or not module.startswith(e.name.split(".")[0]):
      raise
    extra = extra or EXTRA_OF[module]
    raise errors.UserError(
      f"{feature} needs {module.split('.')[0]}, which is not installed; "
      f"pip install 'tnjax[{extra}]' adds it."
    ) from None


def check_installed(module: str, feature: str, extra: str | None = None) -> None:
  """The same one line as `require`, without importing the module (a config check runs
  before anything is written, and importing TensorFlow takes seconds)."""
  try:
    found = importlib.util.find_spec(module) is not None
  except (ModuleNotFoundError, ValueError):  # a parent package is missing; import blocked
    found = False
  if not found:
    raise errors.UserError(
      f"{feature} needs {module.split('.')[0]}, which is not installed; "
      f"pip install 'tnjax[{extra or EXTRA_OF[module]}]' adds it."
    )
