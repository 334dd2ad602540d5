"""Keras applications VGG weights load into tnjax's VGG and compute what Keras computes.

Keras ships with TensorFlow here; its VGG-16/19 are built offline with random weights
(the downloaded files hold the same layers under the same names), saved in the
formats researchers have them in, loaded by tnjax.training.pretrained, and both
networks are run on the same image.
"""

import os

import h5py
import numpy as np
import pytest
from flax import nnx

from tnjax import models
from tnjax.training import keras_weights, pretrained

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _keras():
  return pytest.importorskip("keras")


def _tnjax_vgg(depth, image_shape, classes=1000):
  model = models.build_model(
    {"name": "vgg", "depth": depth, "variant": "imagenet"}, image_shape, classes, rngs=nnx.Rngs(0)
  )
  model.eval()  # dropout off, as Keras's VGG has none
  return model


def _image(shape, seed=0):
  return np.random.default_rng(seed).normal(0, 50, size=(1, *shape)).astype(np.float32)


@pytest.mark.parametrize("depth", [16, 19])
@pytest.mark.parametrize("file_format", ["keras3", "legacy_h5"])
def test_keras_vgg_conv_weights_give_the_same_features(tmp_path, depth, file_format):
  keras = _keras()
  build = {16: keras.applications.VGG16, 19: keras.applications.VGG19}[depth]
  source = build(weights=None, include_top=False, input_shape=(32, 32, 3))
  if file_format == "keras3":
    path = str(tmp_path / "vgg.weights.h5")
    source.save_weights(path)
  else:
    path = str(tmp_path / "vgg.h5")  # model.save's HDF5 layout: model_weights/<layer>/...
    source.save(path)
  names, normalization = pretrained.describe_weights(path)
  assert normalization == "caffe" and len(names) == 2 * (13 if depth == 16 else 16)
  model = _tnjax_vgg(depth, (32, 32, 3))
  loaded = pretrained.load_pretrained(model, path)
  assert len(loaded) == len(names) and all(n.startswith("conv") for n in loaded)
  image = _image((32, 32, 3))
  expected = np.asarray(source(image))
  np.testing.assert_allclose(np.asarray(model.features(image)), expected, rtol=2e-4, atol=2e-3)


def test_the_original_applications_file_layout_maps_by_weight_names(tmp_path):
  """The downloaded vgg16_weights_tf_dim_ordering_tf_kernels.h5 lists each layer's arrays
  in attrs['weight_names'] under Keras 1 names ('block1_conv1_W_1:0'), kernel first."""
  path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
  rng = np.random.default_rng(0)
  arrays = {}
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = [b"input_1", b"block1_conv1", b"flatten", b"fc1", b"predictions"]
    f.create_group("input_1").attrs["weight_names"] = []
    f.create_group("flatten").attrs["weight_names"] = []
    for keras_name, shape in (
      ("block1_conv1", (3, 3, 3, 64)),
      ("fc1", (25088, 8)),
      ("predictions", (8, 1000)),
    ):
      group = f.create_group(keras_name)
      kernel, bias = f"{keras_name}_W_1:0", f"{keras_name}_b_1:0"
      group.attrs["weight_names"] = [kernel.encode(), bias.encode()]
      name = keras_weights.tnjax_layer_name(keras_name)
      arrays[f"{name}/kernel"] = rng.normal(size=shape).astype(np.float32)
      arrays[f"{name}/bias"] = rng.normal(size=shape[-1]).astype(np.float32)
      group.create_dataset(kernel, data=arrays[f"{name}/kernel"])
      group.create_dataset(bias, data=arrays[f"{name}/bias"])
  read = pretrained.read_weights(str(path))
  assert (
    sorted(read)
    == sorted(arrays)
    == sorted(
      ["conv1_1/kernel", "conv1_1/bias", "fc6/kernel", "fc6/bias", "output/kernel", "output/bias"]
    )
  )
  for name, array in arrays.items():
    np.testing.assert_array_equal(read[name], array)


def test_a_tt_fc6_keeps_its_own_initialisation_while_the_rest_loads(tmp_path):
  model = models.build_model(
    {
      "name": "vgg",
      "depth": 16,
      "variant": "imagenet",
      "layers": {"fc6": {"kind": "tt", "ranks": 2}},
    },
    (32, 32, 3),
    10,
    rngs=nnx.Rngs(0),
  )
  cores_before = np.asarray(model.fc6.cores[0][...])
  arrays = {
    "conv1_1/kernel": np.ones((3, 3, 3, 64), np.float32),
    "fc6/kernel": np.ones((512, 4096), np.float32),  # dense in the file, TT in the model
    "fc6/bias": np.ones(4096, np.float32),
  }
  params = pretrained.param_names(model)
  assert pretrained.factorized_layers(params, arrays) == {"fc6": ["fc6/kernel"]}
  assert pretrained.load_arrays(model, arrays) == ["conv1_1/kernel"]
  np.testing.assert_array_equal(model.fc6.cores[0][...], cores_before)
  np.testing.assert_array_equal(model.fc6.bias[...], np.zeros(4096))


@pytest.mark.slow
def test_keras_vgg16_with_its_top_gives_the_same_logits_at_224(tmp_path):
  keras = _keras()
  source = keras.applications.VGG16(weights=None, include_top=True)
  path = str(tmp_path / "vgg16.weights.h5")
  source.save_weights(path)
  model = _tnjax_vgg(16, (224, 224, 3))
  assert len(pretrained.load_pretrained(model, path)) == 32  # 13 convs + 3 FC, kernel + bias
  image = _image((224, 224, 3), seed=1)
  expected = np.asarray(source(image))  # softmax probabilities
  logits = np.asarray(model(image))
  probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
  np.testing.assert_allclose(probabilities, expected, rtol=2e-3, atol=1e-6)
