"""TrainStep: the trainer's jitted SGD step over the state pytree.

The state (model + optimizer) is split once into a static graphdef and a pytree;
the step is a plain `jax.jit` over the pytree with the state donated, so XLA
updates it in place and compiles exactly once (fixed batch shapes). The input
hands the step a batch reference and a pure fetch traced into it, so in-memory
data are gathered on the device.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from tnjax.data import augment as augment_lib
from tnjax.training import evaluation


class TrainStep:
  """The run's jitted SGD step, `step(state, arrays, batch_indices) -> (state, metrics)` on
  the batch `fetch(arrays, batch_indices)`, closed over what stays fixed for the run.
  `compilations` counts its traces: 1 unless the shapes it is called with change."""

  def __init__(
    self, graphdef, fetch, augmentation: str, seed: int, shardings=None, *, donate_state=True
  ):
    self.compilations = 0

    def step(state, arrays, batch_indices):
      self.compilations += 1  # Python runs here only while JAX traces
      x, y = fetch(arrays, batch_indices)
      parts = nnx.merge(graphdef, state)
      model, optimizer = parts["model"], parts["optimizer"]
      model.train()
      if shardings is not None:  # data parallel: each device takes its slice of the batch
        x, y = jax.lax.with_sharding_constraint((x, y), shardings["batch"])
      # The augmentation key depends only on (seed, step): resumed runs see the same crops.
      key = jax.random.fold_in(jax.random.key(seed), optimizer.step[...])
      x = augment_lib.augment(augmentation, key, x)

      def loss_fn(model):
        logits = model(x)
        return evaluation.cross_entropy(logits, y).mean(), logits

      # Gradients only for what the optimizer trains (config.trainable); the rest stays frozen.
      trainable = nnx.DiffState(0, optimizer.wrt)
      (loss, logits), grads = nnx.value_and_grad(loss_fn, argnums=trainable, has_aux=True)(model)
      optimizer.update(model, grads)
      accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
      new_state = nnx.state(parts)
      if shardings is not None:  # keep the input layout: the next step reuses this compilation
        new_state = jax.lax.with_sharding_constraint(new_state, shardings["state"])
      return new_state, {"loss": loss, "accuracy": accuracy}

    self._step = jax.jit(step, donate_argnums=0 if donate_state else ())

  def __call__(self, state, arrays, batch_indices):
    return self._step(state, arrays, batch_indices)
