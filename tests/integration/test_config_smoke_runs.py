"""Every config and zoo model trains end to end at smoke size (tfds mock or synthetic data)."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from flax import nnx

from tnjax.training import schema as config_schema
from tnjax import models
from tnjax.training import trainer
from tnjax.configs import (
  adtn_alexnet_cifar10,
  adtn_fc2_mnist,
  adtn_lenet5_mnist,
  sketch_cifar10,
  sketch_mnist,
  tt_cifar10,
)


@pytest.mark.slow
@pytest.mark.parametrize("config_module", [adtn_fc2_mnist, adtn_lenet5_mnist])
def test_adtn_configs_train_at_smoke_size_under_tfds_mock(tmp_path, config_module):
  # The default depth (M = 8), with the gate layers scanned: the same numbers, compiled 3x
  # faster (tests/nn/test_adtn.py checks scanned against unrolled).
  config = config_module.get_config("runlocal,scan")
  with tfds.testing.mock_data(num_examples=64):
    result = trainer.train(config, str(tmp_path)).result
  assert result["train_step_compilations"] == 1 and 0.0 <= result["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_cifar10_training_with_augmentation_under_tfds_mock(tmp_path):
  c = config_schema.base_config()
  c.data.update(source="tfds", name="cifar10", scale="standardize", augment="crop_flip")
  c.model.update(name="small_cnn", conv_dropout=0.0, dense_dropout=0.0)
  c.update(num_epochs=1, batch_size=16, eval_batch_size=32, progress_bar=False)
  with tfds.testing.mock_data(num_examples=32):
    result = trainer.train(c, str(tmp_path / "a")).result
  assert result["train_step_compilations"] == 1 and np.isfinite(result["train_loss"])
  jax.clear_caches()


@pytest.mark.slow
@pytest.mark.parametrize(
  "config_module, arg, name",
  [
    (sketch_mnist, "runlocal", "mnist"),
    (sketch_mnist, "runlocal,method=tucker_tt", "mnist"),
    (sketch_cifar10, "runlocal,k=8,conv_k=2", "cifar10"),
  ],
)
def test_sketch_configs_train_at_smoke_size_under_tfds_mock(tmp_path, config_module, arg, name):
  config = config_module.get_config(arg)
  assert config.data.source == "tfds" and config.data.name == name
  with tfds.testing.mock_data(num_examples=64):
    result = trainer.train(config, str(tmp_path)).result
  assert result["train_step_compilations"] == 1
  assert 0.0 <= result["test_accuracy"] <= 1.0
  assert result["num_params"] < {"mnist": 61706, "cifar10": 1250858}[name]
  jax.clear_caches()


@pytest.mark.slow
def test_cifar_vgg_with_batchnorm_and_dropout_trains_and_updates_batch_stats(tmp_path):
  c = config_schema.base_config()
  c.data.source, c.data.name = "synthetic", "synthetic"
  c.data.synthetic.update(image_shape=(32, 32, 3), num_classes=10, num_train=32, num_test=16)
  c.model.update(name="vgg", variant="cifar", layers={"fc6": {"kind": "tt", "ranks": 2}})
  c.num_epochs, c.batch_size, c.eval_batch_size = 1, 8, 16
  c.optimizer.update(name="adam")
  c.schedule.learning_rate = 1e-3
  c.progress_bar = False
  result, state = trainer.train(c, str(tmp_path))
  assert result["train_step_compilations"] == 1 and np.isfinite(result["test_loss"])
  model_state = state["model"]
  mean = np.asarray(jax.tree.leaves(model_state["bn1_1"]["mean"])[0])
  assert mean.shape == (64,) and np.abs(mean).max() > 0  # running statistics moved in training
  jax.clear_caches()


@pytest.mark.slow
def test_adtn_alexnet_trains_at_smoke_size_under_tfds_mock(tmp_path):
  config = adtn_alexnet_cifar10.get_config("runlocal")
  # Smaller FC layers for speed (the full ADTNs generate 5M weights a step); 2 steps.
  config.model.hidden_features, config.num_epochs, config.data.max_train_examples = 64, 1, 32
  with tfds.testing.mock_data(num_examples=32):
    result = trainer.train(config, str(tmp_path)).result
  assert result["train_step_compilations"] == 1 and 0.0 <= result["test_accuracy"] <= 1.0
  jax.clear_caches()


@pytest.mark.slow
def test_tt_cifar10_trains_at_smoke_size_under_tfds_mock(tmp_path):
  config = tt_cifar10.get_config("runlocal")
  config.num_epochs, config.data.max_train_examples = 1, 32
  # The 3,072 x 3,072 ZCA fit takes ~15 s on 2 cores; tests/data/test_data.py checks it small.
  config.data.whiten = ""
  with tfds.testing.mock_data(num_examples=32):
    result = trainer.train(config, str(tmp_path)).result
  assert result["train_step_compilations"] == 1 and 0.0 <= result["test_accuracy"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize(
  "name, arg",
  [
    ("adtn_alexnet_cifar10", "arch=zfnet,runlocal,synthetic"),
    ("adtn_vgg16_cifar100", "runlocal,synthetic"),
    ("tt_wide_cifar10", "runlocal,synthetic"),
  ],
)
def test_remaining_zoo_configs_train_one_step(tmp_path, name, arg):
  config = importlib.import_module(f"tnjax.configs.{name}").get_config(arg)
  # One step and a small FC head: these configs' smoke test is that they build and train.
  config.num_epochs, config.data.max_train_examples = 1, config.batch_size
  if "hidden_features" in config.model and config.model.name != "wide_tt":
    config.model.hidden_features = 64
  result = trainer.train(config, str(tmp_path)).result  # synthetic data, the configs' shapes
  assert result["train_step_compilations"] == 1 and np.isfinite(result["test_loss"])
  jax.clear_caches()


@pytest.mark.parametrize(
  "name, arg",
  [("adtn_vgg16_cifar10", "runlocal,synthetic"), ("tt_vgg16", "runlocal,arch=tt4_tt4_fc")],
)
def test_twins_of_trained_configs_trace_forward_and_backward(name, arg):
  """Configs whose model another test trains with other layers (tt_vgg19 in
  test_trainable.py, the ADTN VGG-16 for CIFAR-100 above): shapes only, as XLA's
  CPU compile of a VGG takes half a minute."""
  config = importlib.import_module(f"tnjax.configs.{name}").get_config(arg)
  shape = tuple(config.data.synthetic.image_shape)
  classes = config.data.synthetic.num_classes
  model = nnx.eval_shape(lambda: models.build_model(config.model, shape, classes, rngs=nnx.Rngs(0)))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def step(params, rest, images):
    model = nnx.merge(graphdef, params, rest)
    model.train()

    def loss(model):
      logits = model(images)
      return logits.mean(), logits

    (_, logits), grads = nnx.value_and_grad(loss, has_aux=True)(model)
    return logits, nnx.state(grads, nnx.Param)

  images = jax.ShapeDtypeStruct((config.batch_size,) + shape, jnp.float32)
  logits, grads = jax.eval_shape(step, params, rest, images)
  assert logits.shape == (config.batch_size, classes)
  assert jax.tree.map(lambda g: g.shape, grads) == jax.tree.map(lambda p: p.shape, params)
