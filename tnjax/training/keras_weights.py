"""The Keras applications' VGG-16 / VGG-19 weight files, read under tnjax's layer names.

Researchers have VGG weights as the Keras applications files: the legacy HDF5
`vgg16_weights_tf_dim_ordering_tf_kernels.h5` (and `..._notop.h5`, VGG-19 likewise,
or any model.save / save_weights .h5 of those models), whose layers are named
block1_conv1 ... block5_conv3, fc1, fc2, predictions; or Keras 3 `.weights.h5`, which
stores the layers in creation order under automatic names (conv2d, conv2d_1, ...,
dense, dense_1, dense_2). Both hold HWIO conv kernels and (in, out) dense kernels,
as tnjax does, and Keras flattens the last feature map in (H, W, C) order, as tnjax's
VGG does, so the arrays copy over unchanged.

The weights expect Caffe-style inputs (BGR, 0-255, ImageNet means subtracted:
keras.applications.vgg16.preprocess_input), which is data.normalization='caffe'.
"""

from __future__ import annotations

import re

import numpy as np

INPUT_NORMALIZATION = "caffe"
_KERAS_NAMES = {"fc1": "fc6", "fc2": "fc7", "predictions": "output"}
_BLOCK_CONV = re.compile(r"block(\d)_conv(\d)$")
_AUTO_NAME = re.compile(r"(conv2d|dense)(?:_(\d+))?$")
VGG_CONVS = {13: 16, 16: 19}  # conv layers -> depth


def tnjax_layer_name(keras_name: str) -> str | None:
  """'block3_conv2' -> 'conv3_2', 'fc1' -> 'fc6', 'predictions' -> 'output'; else None."""
  match = _BLOCK_CONV.match(keras_name)
  if match:
    return f"conv{match.group(1)}_{match.group(2)}"
  return _KERAS_NAMES.get(keras_name)


def is_keras_vgg(h5_file) -> bool:
  """Whether an open h5py.File holds Keras VGG layers (legacy or Keras 3 layout)."""
  return bool(_legacy_layers(h5_file) or _keras3_layers(h5_file))


def keras_vgg_names(h5_file) -> list[str]:
  """The tnjax array names the file holds ('conv1_1/kernel', ...), without reading them."""
  layers = _legacy_layers(h5_file) or _keras3_layers(h5_file)
  return [f"{name}/{part}" for name in layers for part in ("kernel", "bias")]


def read_keras_vgg(h5_file) -> dict[str, np.ndarray]:
  """{'conv1_1/kernel': ..., 'conv1_1/bias': ..., 'fc6/kernel': ..., ...} of an open file."""
  layers = _legacy_layers(h5_file) or _keras3_layers(h5_file)
  arrays = {}
  for name, (kernel, bias) in layers.items():
    arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = kernel[()], bias[()]
  return arrays


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def _legacy_layers(f) -> dict:
  """Keras 1/2 HDF5 weights: attrs['layer_names'], each layer's attrs['weight_names']
  listing its kernel then its bias (names differ between Keras versions: 'kernel:0',
  'block1_conv1_W_1:0', ...). A full-model save keeps them under 'model_weights'."""
  root = f["model_weights"] if "model_weights" in f else f
  layers = {}
  for keras_name in map(_text, root.attrs.get("layer_names", [])):
    weight_names = [_text(w) for w in root[keras_name].attrs.get("weight_names", [])]
    name = tnjax_layer_name(keras_name)
    if name is not None and len(weight_names) == 2:
      layers[name] = tuple(root[keras_name][w] for w in weight_names)
  return layers


def _keras3_layers(f) -> dict:
  """Keras 3 .weights.h5: layers/<automatic name>/vars/{0: kernel, 1: bias}, the conv and
  dense layers numbered in the order the model made them."""
  if "layers" not in f:
    return {}
  named = {tnjax_layer_name(k): k for k in f["layers"] if tnjax_layer_name(k) is not None}
  if named:  # saved under the layers' own names (block1_conv1, fc1, ...)
    return {n: (f["layers"][k]["vars"]["0"], f["layers"][k]["vars"]["1"]) for n, k in named.items()}
  found = {"conv2d": [], "dense": []}
  for key in f["layers"]:
    match = _AUTO_NAME.match(key)
    if match and "vars" in f["layers"][key] and len(f["layers"][key]["vars"]) == 2:
      found[match.group(1)].append((int(match.group(2) or 0), key))
  convs, denses = sorted(found["conv2d"]), sorted(found["dense"])
  if len(convs) not in VGG_CONVS or len(denses) not in (0, 3):
    return {}
  blocks = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}[VGG_CONVS[len(convs)]]
  names = [f"conv{b + 1}_{i + 1}" for b, n in enumerate(blocks) for i in range(n)]
  names += ["fc6", "fc7", "output"][: len(denses)]
  layers = {}
  for name, (_, key) in zip(names, convs + denses):
    variables = f["layers"][key]["vars"]
    layers[name] = (variables["0"], variables["1"])
  return layers
