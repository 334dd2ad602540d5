"""tnjax: compress neural networks with tensor networks, in JAX/Flax NNX.

>>> import tnjax as tn
>>> from flax import nnx
>>> layer = tn.nn.make_dense({"kind": "tt", "ranks": 8}, 1024, 1024, rngs=nnx.Rngs(0))
>>> layer.weight_params  # a 4x8x8x4 TT-matrix at rank 8, for a 1024x1024 weight
8448
>>> tt = tn.tensor.tt_from_dense(layer.to_dense(), (4, 8, 8, 4), (4, 8, 8, 4), max_rank=8)
>>> config = tn.load_config("configs/tt_mnist.py:synthetic,runlocal", {"num_epochs": 1})
>>> # tn.train is what `python -m tnjax.train` runs:
>>> result = tn.train(config, "runs/x").result  # doctest: +ELLIPSIS
Data: synthetic (synthetic), 128 train / 64 test, images (32, 32, 1), 10 classes
...
Done: step 8, test accuracy ...
>>> model, config = tn.load("runs/x")  # any run, ready for inference
>>> predict = tn.load_predict("runs/x")  # the data set's own uint8 images -> logits
>>> predict.input["shape"], predict.input["dtype"]
([28, 28, 1], 'uint8')

Subpackages load on first use, so `import tnjax` itself is instant. The examples in this
package's docstrings run in the test suite (tests/programs/test_examples.py).
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
  "train",  # the program module, callable: tn.train(config, workdir) trains
)
# name -> (module, attribute). tn.sweep stays the program module (`python -m tnjax.sweep`).
_FUNCTIONS = {
  "load_config": ("tnjax.config_lib", "load_config"),
  "load": ("tnjax.compression.runs", "load"),
  "load_predict": ("tnjax.compression.runs", "load_predict"),
  "compress": ("tnjax.compression.convert", "compress_model"),
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
