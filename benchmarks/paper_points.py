"""The papers' layers at their own shapes, read from the configs in tnjax/configs.

Every module of tnjax.configs with a `get_config` is a paper experiment. Its
default point, plus the points in EXTRA_POINTS, is built as the trainer builds
it; one traced forward pass at the config's batch size records each compressed
layer's input shape and chosen path. Nothing here names a layer by hand: a new
config is benchmarked the moment it exists.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

import tnjax.configs
from tnjax import config_lib, models
from tnjax.nn import make_conv, make_dense
from tnjax.nn.base import CompressedLayer
from tnjax.nn.summary import traced_layers

# Sweep points the papers' headline comparisons use, beyond each config's default.
EXTRA_POINTS = {
  "cpac_mnist": ["rank=12", "fast", "fast,rank=12"],  # batch 1 as published; 64 for sweeps
  "adtn_fc2_mnist": ["layers=4"],  # the deeper ADTN of the FC-2 comparison
}
SIZES = {  # data name -> (image shape, classes)
  "mnist": ((28, 28, 1), 10),
  "fashion_mnist": ((28, 28, 1), 10),
  "cifar10": ((32, 32, 3), 10),
  "cifar100": ((32, 32, 3), 100),
  "imagenet2012": ((224, 224, 3), 1000),
}
DENSE = {"kind": "dense"}


@dataclasses.dataclass
class LayerPoint:
  """One compressed layer of one config, at the input shape it sees in training."""

  config: str
  layer_name: str
  layer: CompressedLayer
  input: jax.ShapeDtypeStruct
  path: str

  @property
  def name(self) -> str:
    return f"{self.config} {self.layer_name}"

  def dense_twin(self, rngs: nnx.Rngs):
    """The dense layer of the same sizes (and strides, padding) as `layer`."""
    layer = self.layer
    if layer.family == "dense":
      return make_dense(DENSE, layer.in_features, layer.out_features, rngs=rngs)
    return make_conv(
      DENSE,
      layer.in_channels,
      layer.out_channels,
      layer.kernel_size,
      strides=layer.strides,
      padding=layer.padding,
      kernel_dilation=layer.kernel_dilation,
      rngs=rngs,
    )


def config_names() -> list[str]:
  """Modules of tnjax.configs that define an experiment (have get_config)."""
  names = []
  for info in pkgutil.iter_modules(tnjax.configs.__path__):
    module = importlib.import_module(f"tnjax.configs.{info.name}")
    if hasattr(module, "get_config"):
      names.append(info.name)
  return sorted(names)


def points() -> list[tuple[str, str]]:
  """(config name, argument string) of every point benchmarked."""
  return [(name, arg) for name in config_names() for arg in [""] + EXTRA_POINTS.get(name, [])]


def load(name: str, arg: str = ""):
  """The packaged config `name` at `arg`, loaded as every program loads a config."""
  return config_lib.load_config(f"{name}:{arg}" if arg else name)


def sizes(config) -> tuple[tuple[int, ...], int]:
  """(image shape, classes) the config's data gives the model."""
  shape, classes = SIZES[config.data.name]
  pad_to = config.data.get("pad_to")
  if pad_to:
    shape = (pad_to, pad_to, shape[2])
  return shape, classes


def build(config, dense: bool = False, rngs: nnx.Rngs | None = None) -> nnx.Module:
  """The config's model, or its dense twin (every layer a plain dense / conv layer)."""
  model_config: Any = config.model.to_dict()
  if dense:
    model_config = {k: v for k, v in model_config.items() if k != "layers"}
    accepted = inspect.signature(models.MODELS[model_config["name"]].__init__).parameters
    model_config.update({k: DENSE for k in ("conv_layer", "dense_layer") if k in accepted})
  shape, classes = sizes(config)
  return models.build_model(
    model_config,
    shape,
    classes,
    rngs=rngs or nnx.Rngs(params=0, dropout=1),
    dtype=config.get("dtype"),
  )


def all_layer_points(name_filter: str = "") -> list[LayerPoint]:
  """Layer points of every config point whose name contains `name_filter`, each
  (format, shape, input) once: configs that share a layer (VGG-16 and -19's FC6) give one."""
  seen, result = set(), []
  for name, arg in points():
    if name_filter and name_filter not in name:
      continue
    for point in layer_points(name, arg):
      key = (type(point.layer).__name__, point.layer.shape_description, point.input.shape)
      if key not in seen:
        seen.add(key)
        result.append(point)
  return result


def layer_points(name: str, arg: str = "") -> list[LayerPoint]:
  """The compressed layers of one config point, each with its training input shape."""
  config = load(name, arg)
  model = build(config)
  shape, _ = sizes(config)
  example = jax.ShapeDtypeStruct((config.batch_size,) + shape, jnp.float32)
  seen = traced_layers(model, example)
  label = name + (f"({arg})" if arg else "")
  result = []
  for path, module in nnx.iter_modules(model):
    if isinstance(module, CompressedLayer) and module.spec.kind != "dense":
      if id(module) in seen.inputs:
        result.append(
          LayerPoint(
            label,
            ".".join(str(p) for p in path),
            module,
            seen.inputs[id(module)],
            seen.paths.get(id(module), "dense"),
          )
        )
  return result
