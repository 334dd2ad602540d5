"""tnjax: compress neural networks with tensor networks, in JAX/Flax NNX.

  import tnjax as tn
  layer = tn.nn.TTDense(...)                 # or tn.nn.make_dense(spec, 1024, 1024, rngs=...)
  tt = tn.tensor.tt_from_dense(weight, in_shape, out_shape, ranks=8)
  config = tn.load_config("configs/tt_mnist.py:fashion_idx", {"num_epochs": 3})
  result = tn.training.train(config, "runs/x").result    # what `python -m tnjax.train` runs
  model, config = tn.load("runs/x")                       # any run, ready for inference
  predict = tn.load_predict("runs/x")                     # raw test images -> logits

Subpackages load on first use, so `import tnjax` itself is instant.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
  "nn",
  "tensor",
  "models",
  "data",
  "training",
  "compression",
  "configs",
  "sharding",
  "fileio",
)
# name -> (module, attribute). tn.train and tn.sweep stay the program modules (`python -m
# tnjax.train`); the training function is tn.training.train.
_FUNCTIONS = {
  "load_config": ("tnjax.config_lib", "load_config"),
  "load": ("tnjax.compression.runs", "load"),
  "load_predict": ("tnjax.compression.runs", "load_predict"),
}

__all__ = list(_SUBMODULES) + list(_FUNCTIONS)


def __getattr__(name: str):
  if name in _SUBMODULES:
    return importlib.import_module(f"tnjax.{name}")
  if name in _FUNCTIONS:
    module, attribute = _FUNCTIONS[name]
    return getattr(importlib.import_module(module), attribute)
  raise AttributeError(f"module 'tnjax' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
