"""How a model picks each layer's spec: a default per family plus per-layer overrides.

Every zoo model takes `conv_layer` (default spec of its conv layers), `dense_layer`
(default of its hidden fully-connected layers) and `layers`, a dict from layer
name ('conv2', 'fc1', ...) to a spec that overrides the default for that layer.
The classifier ('output') stays dense unless `layers` names it.
"""

from __future__ import annotations

from typing import Mapping

DENSE = {"kind": "dense"}


class LayerSpecs:
  """Resolves the spec of each named layer of one model; rejects unknown names."""

  def __init__(self, model_name: str, names, conv_layer=None, dense_layer=None, layers=None):
    self.model_name = model_name
    self.conv_layer = dict(conv_layer or DENSE)
    self.dense_layer = dict(dense_layer or DENSE)
    self.layers = {k: dict(v) for k, v in dict(layers or {}).items()}
    unknown = sorted(set(self.layers) - set(names))
    if unknown:
      raise ValueError(
        f"{model_name}: config.model.layers names {unknown}, which are not layers "
        f"of this model; its layers are {list(names)}."
      )

  def conv(self, name: str) -> Mapping:
    return self.layers.get(name, self.conv_layer)

  def dense(self, name: str) -> Mapping:
    return self.layers.get(name, self.dense_layer)

  def output(self, name: str = "output") -> Mapping:
    return self.layers.get(name, DENSE)
