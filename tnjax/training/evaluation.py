"""Evaluation on the test split: per-batch sums of loss and correct predictions, summed up.

`evaluator` is what the training loop calls each epoch; `evaluate_model` evaluates any
model (a loaded, compressed or merged one) on a config's test split.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from tnjax import data as data_lib
from tnjax import errors
from tnjax import nn as nn_lib
from tnjax import sharding as sharding_lib


def cross_entropy(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def eval_step(graphdef, fetch, state, arrays, reference):
  """Sums of loss and correct predictions over the unmasked examples of one batch."""
  return eval_sums(nnx.merge(graphdef, state)["model"], *fetch(arrays, reference))


def eval_model_step(graphdef, fetch, model_state, arrays, reference):
  """eval_step for a model split on its own (e.g. the dense copy of an ADTN model)."""
  return eval_sums(nnx.merge(graphdef, model_state), *fetch(arrays, reference))


def evaluator(setup, data):
  """state -> test metrics. A model with generated weights (ADTN) is evaluated as its
  dense copy (tnjax.nn.densify), so each weight is generated once per evaluation, not
  once per test batch."""
  model = nnx.merge(setup.graphdef, setup.state)["model"]
  if not any(nn_lib.is_generated(layer) for _, layer in nnx.iter_modules(model)):
    eval_fn = jax.jit(functools.partial(eval_step, setup.graphdef, data.fetch_eval))
    return lambda state: sum_up(eval_fn(state, data.arrays, r) for r in data.eval_refs())
  eval_fn = jax.jit(eval_model_step, static_argnums=(0, 1))  # one compile: same graph each time

  def run(state):
    dense = nn_lib.densify(nnx.merge(setup.graphdef, state)["model"], nn_lib.is_generated)
    graphdef, dense_state = nnx.split(dense)
    return sum_up(
      eval_fn(graphdef, data.fetch_eval, dense_state, data.arrays, r) for r in data.eval_refs()
    )

  return run


def evaluate_model(model: nnx.Module, config, fitted: dict | None = None) -> dict:
  """Test loss, accuracy and top-5 accuracy of `model` on config.data's test split (what
  `python -m tnjax.evaluate` and the compression report print). `fitted`: the run's
  preprocessing arrays (its preprocessing.npz), so the test images are prepared as the
  model was trained on them, whatever training examples the config now names."""
  with errors.input_errors_are_user_errors():
    mesh = sharding_lib.make_mesh(config.get("mesh"))
    data = data_lib.make_input(config, mesh, fitted or None)
  graphdef, state = nnx.split(model)
  eval_fn = jax.jit(functools.partial(eval_model_step, graphdef, data.fetch_eval))
  return sum_up(eval_fn(state, data.arrays, r) for r in data.eval_refs())


def eval_sums(model, x, y, mask):
  model.eval()
  logits = model(x)
  top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))[1]  # ImageNet tables report top-5
  return {
    "loss_sum": jnp.sum(cross_entropy(logits, y) * mask),
    "correct": jnp.sum((jnp.argmax(logits, -1) == y) * mask),
    "correct_top5": jnp.sum(jnp.any(top5 == y[:, None], axis=-1) * mask),
    "count": jnp.sum(mask),
  }


def sum_up(outputs) -> dict:
  totals = None
  for out in outputs:
    totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
  totals = jax.device_get(totals)
  count = max(float(totals["count"]), 1.0)
  return {
    "test_loss": float(totals["loss_sum"]) / count,
    "test_accuracy": float(totals["correct"]) / count,
    "test_top5_accuracy": float(totals["correct_top5"]) / count,
  }
