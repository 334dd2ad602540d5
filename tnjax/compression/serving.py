"""A run's inference function as a serialized `jax.export` artefact, ready to serve.

The artefact takes the data set's own examples, as the run's input_pipeline.json
states them (uint8 images at their stored size, e.g. (batch, 28, 28, 1) for MNIST-like
data; the eval crop for streamed ImageNet), and runs the run's whole deterministic eval
pipeline inside (scaling, padding, GCN + ZCA, mean subtraction, normalisation:
tnjax.data.eval_pipeline) before the model, with the weights inside. Load it anywhere
with JAX, without tnjax:

>>> import jax, numpy as np
>>> from tnjax.compression import evaluate_export
>>> evaluate_export.export_run("runs/x", "runs/x/model.jaxexport")  # doctest: +ELLIPSIS
Wrote ... and its input contract model.jaxexport.json.
It takes input (batch, 28, 28, 1) uint8 in [0, 255]; inside: x/255 -> pad to 32x32 -> ...
>>> exported = jax.export.deserialize(bytearray(open("runs/x/model.jaxexport", "rb").read()))
>>> images = np.zeros((5, 28, 28, 1), np.uint8)  # e.g. Fashion-MNIST's own test images
>>> exported.call(images).shape
(5, 10)

`export_tflite` writes the same function as a TFLite model (jax2tf and TensorFlow's
converter), for runtimes without JAX.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from flax import nnx

from tnjax import errors, extras, fileio
from tnjax.data import eval_pipeline, memory
from tnjax.training import run_files


def run_input_pipeline(workdir, config) -> tuple[dict, dict]:
  """(pipeline, fitted arrays) of a run, as it recorded them when it started.

  A run made before tnjax recorded its pipeline gets it from its config, and the arrays
  its steps fitted on the train split (the mean image, say) fitted again: the data and
  the fit are deterministic, so they are the run's own.
  """
  workdir = fileio.workdir_path(workdir)
  pipeline = fileio.read_json(workdir / run_files.INPUT_PIPELINE) or eval_pipeline.record(
    config.data
  )
  arrays = fileio.read_npz(workdir / run_files.PREPROCESSING)
  missing = eval_pipeline.needed_arrays(pipeline) - set(arrays)
  if missing:
    print(
      f"tnjax: note: {workdir} has no recorded {', '.join(sorted(missing))} (made before "
      "runs recorded their input pipeline); fitting them again on its train split.",
      file=sys.stderr,
      flush=True,
    )
    with errors.input_errors_are_user_errors():
      arrays = memory.load_dataset(config.data).preprocessing
  return pipeline, arrays


def write_input_pipeline(workdir, pipeline: dict, arrays: dict) -> None:
  """Records a pipeline in a workdir (a compressed run takes its source's)."""
  workdir = fileio.workdir_path(workdir)
  fileio.write_json(workdir / run_files.INPUT_PIPELINE, pipeline)
  if arrays:
    fileio.write_npz(workdir / run_files.PREPROCESSING, arrays)


def inference_function(model: nnx.Module, pipeline: dict, arrays: dict):
  """raw examples -> logits, the pipeline's arrays and the weights closed over (constants
  of the exported program)."""
  graphdef, state = nnx.split(model)
  constants = {k: jnp.asarray(v) for k, v in arrays.items()}

  def infer(examples):
    x = eval_pipeline.apply(examples, pipeline, constants)
    net = nnx.merge(graphdef, state)
    net.eval()
    return net(x)

  return infer


def input_spec(pipeline: dict, batch="batch") -> jax.ShapeDtypeStruct:
  """The artefact's input: the pipeline's contract with a symbolic batch dimension."""
  contract = pipeline["input"]
  dims = ", ".join(map(str, contract["shape"]))
  return jax.ShapeDtypeStruct(
    jax.export.symbolic_shape(f"{batch}, {dims}"), jnp.dtype(contract["dtype"])
  )


def export_model(model: nnx.Module, pipeline: dict, arrays: dict) -> bytes:
  """The serialized artefact, its batch dimension symbolic."""
  exported = jax.export.export(jax.jit(inference_function(model, pipeline, arrays)))(
    input_spec(pipeline)
  )
  return bytes(exported.serialize())


def export_tflite(model: nnx.Module, pipeline: dict, arrays: dict) -> bytes:
  """The same inference function as a TFLite flatbuffer (jax2tf, then TensorFlow's
  converter), batch dimension free; for phones and microcontroller toolchains."""
  tf = extras.require("tensorflow", "--tflite", "tflite")
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top

  contract = pipeline["input"]
  polymorphic = "(batch, " + ", ".join(map(str, contract["shape"])) + ")"
  function = tf.function(
    jax2tf.convert(
      inference_function(model, pipeline, arrays),
      polymorphic_shapes=[polymorphic],
      with_gradient=False,
    ),
    autograph=False,
    input_signature=[
      tf.TensorSpec([None, *contract["shape"]], tf.dtypes.as_dtype(contract["dtype"]))
    ],
  )
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
    [function.get_concrete_function()], function
  )
  return converter.convert()
