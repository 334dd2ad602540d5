"""The packaged configs: `tnjax.configs.tt_mnist` (imported on first use, like the
`--config tt_mnist` and `tn.load_config("tt_mnist")` routes to the same files)."""

import importlib
import pkgutil


def __getattr__(name: str):
  if name in {m.name for m in pkgutil.iter_modules(__path__)}:
    return importlib.import_module(f"{__name__}.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
