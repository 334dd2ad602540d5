"""What only the trainer uses: the loop, optimizer, checkpoints, the workdir lock,
checked resume, preemption, metric writers, pretrained weights and validation.

The programs (tnjax.train, tnjax.sweep, ...) sit above this package; the layers,
models and data below it never import it.
"""

import importlib


def __getattr__(name: str):
  if name in ("train", "Trained"):  # lazily: importing the package stays cheap
    return getattr(importlib.import_module("tnjax.training.trainer"), name)
  raise AttributeError(f"module 'tnjax.training' has no attribute {name!r}")
