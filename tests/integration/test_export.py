"""Exported inference artefacts compute what the run's model computes, preprocessing included,
at any batch size."""

import io

import jax
import pytest
import numpy as np
from flax import nnx

from tnjax import models
from tnjax.compression import load, serving
from tnjax.configs import tt_cifar10, tt_mnist
from tnjax.data import memory
from tnjax.training import checkpoint, optim

pytestmark = pytest.mark.slow


def _saved_run(workdir, config, preprocessing=None):
  image_shape, classes = memory.nominal_shape(config.data)
  model = models.build_model(config.model, image_shape, classes, rngs=nnx.Rngs(1))
  schedule = optim.make_schedule(config.schedule, 10, config.num_epochs)
  optimizer = nnx.Optimizer(model, optim.make_optimizer(config.optimizer, schedule), wrt=nnx.Param)
  _, state = nnx.split({"model": model, "optimizer": optimizer})
  saver = checkpoint.Checkpointer(workdir / "checkpoints", async_save=False)
  saver.save(1, state, config.to_dict())
  saver.close()
  if preprocessing:
    buffer = io.BytesIO()
    np.savez(buffer, **preprocessing)
    (workdir / "preprocessing.npz").write_bytes(buffer.getvalue())
  return image_shape


def test_an_exported_tt_fc2_equals_the_model_at_any_batch(tmp_path):
  image_shape = _saved_run(tmp_path, tt_mnist.get_config("synthetic,runlocal"))
  model, config = load(str(tmp_path))
  exported = jax.export.deserialize(
    bytearray(serving.export_model(model, config, serving.run_preprocessing(str(tmp_path))))
  )
  for batch in (1, 7):
    x = np.random.default_rng(batch).uniform(size=(batch, *image_shape)).astype(np.float32)
    np.testing.assert_allclose(exported.call(x), model(x), rtol=1e-5, atol=1e-6)


def test_the_export_applies_the_runs_gcn_and_zca(tmp_path):
  config = tt_cifar10.get_config("synthetic,runlocal")
  rng = np.random.default_rng(0)
  train = rng.uniform(size=(64, 32, 32, 3)).astype(np.float32)
  zca = memory.zca_fit(memory.global_contrast_normalize(train))
  image_shape = _saved_run(tmp_path, config, zca)
  model, config = load(str(tmp_path))
  exported = jax.export.deserialize(
    bytearray(serving.export_model(model, config, serving.run_preprocessing(str(tmp_path))))
  )
  x = rng.uniform(size=(3, *image_shape)).astype(np.float32)
  expected = model(memory.zca_apply(memory.global_contrast_normalize(x), zca))
  np.testing.assert_allclose(exported.call(x), expected, rtol=1e-4, atol=1e-5)


def test_the_tflite_model_equals_the_model(tmp_path):
  tf = pytest.importorskip("tensorflow")
  image_shape = _saved_run(tmp_path, tt_mnist.get_config("synthetic,runlocal"))
  model, config = load(str(tmp_path))
  interpreter = tf.lite.Interpreter(model_content=serving.export_tflite(model, config, {}))
  x = np.random.default_rng(0).uniform(size=(3, *image_shape)).astype(np.float32)
  given = interpreter.get_input_details()[0]
  interpreter.resize_tensor_input(given["index"], x.shape)
  interpreter.allocate_tensors()
  interpreter.set_tensor(given["index"], x)
  interpreter.invoke()
  logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
  np.testing.assert_allclose(logits, model(x), rtol=1e-5, atol=1e-5)
