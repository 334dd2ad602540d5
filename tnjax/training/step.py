"""TrainStep: the trainer's jitted SGD step over the state pytree.

The state (model + optimizer) is split once into a static graphdef and a pytree;
the step is a plain `jax.jit` over the pytree with the state donated, so XLA
updates it in place and compiles exactly once (fixed batch shapes). The input
hands the step a batch reference and a pure fetch traced into it, so in-memory
data are gathered on the device.

The training loop passes the state as its flat list of leaves (`flatten`, `run`,
`unflatten`): jit walks an nnx.State pytree in Python on every call, 0.1-0.6 ms a step on
a CPU, a large share of a small model's step (benchmarks/results/flat_state_cpu.md:
CPAC-MNIST at batch 1, 0.63 -> 0.50 ms).
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
  `compilations` counts its traces: 1 unless the shapes it is called with change.

  A loop of many steps keeps the state flat: `leaves = step.flatten(state)`, then
  `leaves, metrics = step.run(leaves, ...)`, and `step.unflatten(leaves)` where it needs the
  state (evaluation, checkpoints)."""

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

    def flat_step(leaves, arrays, batch_indices):
      new_state, metrics = step(self.unflatten(leaves), arrays, batch_indices)
      new_leaves, treedef = jax.tree.flatten(new_state)
      if treedef != self._treedef:  # the next call unflattens them with the first treedef
        raise ValueError(
          f"The step changed the state's structure ({treedef.num_leaves} arrays, "
          f"{self._treedef.num_leaves} before)."
        )
      return new_leaves, metrics

    self._treedef = None
    self._step = jax.jit(flat_step, donate_argnums=0 if donate_state else ())

  def flatten(self, state) -> list:
    """The state's leaves, the form `run` takes and returns."""
    leaves, treedef = jax.tree.flatten(state)
    if self._treedef is None:
      self._treedef = treedef
    elif treedef != self._treedef:
      raise ValueError(
        f"This step was built for another state ({self._treedef.num_leaves} arrays); this "
        f"one has {treedef.num_leaves}: build a TrainStep for each model."
      )
    return leaves

  def unflatten(self, leaves):
    """The state whose leaves `leaves` are (as `flatten` and `run` give them)."""
    return jax.tree.unflatten(self._treedef, leaves)

  def run(self, leaves, arrays, batch_indices):
    """One step on the flat state: (new leaves, metrics)."""
    if self._treedef is None:
      raise ValueError("TrainStep.run takes the leaves of step.flatten(state); flatten first.")
    return self._step(leaves, arrays, batch_indices)

  def __call__(self, state, arrays, batch_indices):
    leaves, metrics = self.run(self.flatten(state), arrays, batch_indices)
    return self.unflatten(leaves), metrics
