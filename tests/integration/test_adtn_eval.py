"""ADTN models are evaluated through their dense copy: the same metrics, one generation."""

import functools

import jax
import numpy as np
import pytest

from tnjax import nn
from tnjax.configs import adtn_lenet5_mnist
from tnjax.training import evaluation
from tnjax.training import setup as setup_lib


def test_the_dense_copy_evaluates_as_the_generating_model():
  config = adtn_lenet5_mnist.get_config("synthetic,runlocal,layers=2")
  setup = setup_lib.build(config, is_main=False)
  data = setup.data
  per_batch = jax.jit(functools.partial(evaluation.eval_step, setup.graphdef, data.fetch_eval))
  expected = evaluation.sum_up(per_batch(setup.state, data.arrays, r) for r in data.eval_refs())
  densified = evaluation.evaluator(setup, data)(setup.state)
  for key in ("test_loss", "test_accuracy", "test_top5_accuracy"):
    np.testing.assert_allclose(densified[key], expected[key], rtol=1e-5, err_msg=key)


def test_densify_replaces_only_the_chosen_layers_and_keeps_the_function():
  from flax import nnx

  from tnjax import models

  model = models.build_model(
    {"name": "lenet5", "layers": {"fc1": {"kind": "adtn"}, "conv2": {"kind": "cp", "rank": 3}}},
    (28, 28, 1),
    10,
    rngs=nnx.Rngs(0),
  )
  model.eval()
  x = np.random.default_rng(0).normal(size=(3, 28, 28, 1)).astype(np.float32)
  only_generated = nn.densify(nnx.clone(model), nn.is_generated)
  assert isinstance(only_generated.fc1, nn.Dense) and isinstance(only_generated.conv2, nn.CPConv)
  everything = nn.densify(nnx.clone(model))
  assert isinstance(everything.conv2, nn.Conv)
  for copy in (only_generated, everything):
    np.testing.assert_allclose(np.asarray(copy(x)), np.asarray(model(x)), rtol=1e-4, atol=1e-5)
  with pytest.raises(AttributeError):
    everything.fc1.gates  # a plain Dense now
