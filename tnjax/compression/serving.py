"""A run's inference function as a serialized `jax.export` artefact, ready to serve.

The artefact is the model's forward pass with the weights inside and the run's own
preprocessing in front (GCN + ZCA when the run fitted them: preprocessing.npz), for
images of any batch size shaped and scaled as config.data's pipeline gives them
(data.scale, data.pad_to). Load it anywhere with JAX, without tnjax:

  exported = jax.export.deserialize(open("model.jaxexport", "rb").read())
  logits = exported.call(images)

`export_tflite` writes the same function as a TFLite model (jax2tf and TensorFlow's
converter), for runtimes without JAX.
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnjax import data as data_lib
from tnjax import fileio
from tnjax.training import run_files


def gcn_zca(images, preprocessing: dict):
  """memory.global_contrast_normalize then memory.zca_apply, in JAX."""
  flat = images.reshape(images.shape[0], -1)
  flat = flat - flat.mean(axis=1, keepdims=True)
  flat = 55.0 * flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-8)
  flat = (flat - preprocessing["zca_mean"]) @ preprocessing["zca_matrix"]
  return flat.reshape(images.shape)


def run_preprocessing(workdir) -> dict:
  """The arrays a run fitted on its train split (empty when it fitted none)."""
  path = fileio.workdir_path(workdir) / run_files.PREPROCESSING
  if not path.exists():
    return {}
  with np.load(io.BytesIO(path.read_bytes())) as arrays:
    return {name: arrays[name] for name in arrays.files}


def inference_function(model: nnx.Module, preprocessing: dict):
  """images -> logits, the weights closed over (constants of the exported program)."""
  graphdef, state = nnx.split(model)
  constants = {k: jnp.asarray(v) for k, v in preprocessing.items()}

  def infer(images):
    x = images.astype(jnp.float32)
    if constants:
      x = gcn_zca(x, constants)
    net = nnx.merge(graphdef, state)
    net.eval()
    return net(x)

  return infer


def export_model(model: nnx.Module, config, preprocessing: dict) -> bytes:
  """The serialized artefact, its batch dimension symbolic."""
  image_shape, _ = data_lib.nominal_shape(config.data)
  spec = jax.ShapeDtypeStruct(
    jax.export.symbolic_shape("batch, " + ", ".join(map(str, image_shape))), jnp.float32
  )
  exported = jax.export.export(jax.jit(inference_function(model, preprocessing)))(spec)
  return bytes(exported.serialize())


def export_tflite(model: nnx.Module, config, preprocessing: dict) -> bytes:
  """The same inference function as a TFLite flatbuffer (jax2tf, then TensorFlow's
  converter), batch dimension free; for phones and microcontroller toolchains."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top

  image_shape, _ = data_lib.nominal_shape(config.data)
  polymorphic = "(batch, " + ", ".join(map(str, image_shape)) + ")"
  function = tf.function(
    jax2tf.convert(
      inference_function(model, preprocessing),
      polymorphic_shapes=[polymorphic],
      with_gradient=False,
    ),
    autograph=False,
    input_signature=[tf.TensorSpec([None, *image_shape], tf.float32)],
  )
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
    [function.get_concrete_function()], function
  )
  return converter.convert()
