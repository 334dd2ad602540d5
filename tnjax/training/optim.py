"""Optimizers and learning-rate schedules from config.optimizer / config.schedule."""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


def make_schedule(schedule_config, steps_per_epoch: int, num_epochs: int) -> optax.Schedule:
  """Learning rate as a function of the step.

  logspace: Novikov et al.'s schedule, one value per epoch, log-spaced from
    learning_rate to end_learning_rate over decay_epochs (at most num_epochs, so that
    `:epochs=N` and `--config.num_epochs=N` give one schedule), then held.
  cosine: per-step cosine decay to end_learning_rate after optional linear warm-up.
  step: learning_rate * decay_rate ** (step // decay_steps), e.g. Novikov's wide-net
    run: 0.06 x 0.64 every 2000 steps.
  """
  name = schedule_config.name
  lr, end = schedule_config.learning_rate, schedule_config.end_learning_rate
  total_steps = steps_per_epoch * num_epochs
  if name == "constant":
    return optax.constant_schedule(lr)
  if name == "logspace":
    decay_epochs = min(schedule_config.decay_epochs or num_epochs, num_epochs)
    per_epoch = jnp.asarray(np.logspace(np.log10(lr), np.log10(end), decay_epochs), jnp.float32)

    def schedule(step):
      epoch = jnp.minimum(step // steps_per_epoch, decay_epochs - 1)
      return per_epoch[epoch]

    return schedule
  if name == "cosine":
    warmup = schedule_config.warmup_epochs * steps_per_epoch
    return optax.warmup_cosine_decay_schedule(
      init_value=0.0 if warmup else lr,
      peak_value=lr,
      warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1),
      end_value=end,
    )
  if name == "step":
    decay_steps = schedule_config.get("decay_steps", 0)
    if decay_steps <= 0:
      raise ValueError(
        f"config.schedule.decay_steps={decay_steps} must be a positive step count for the "
        "'step' schedule, e.g. --config.schedule.decay_steps=2000."
      )
    return optax.exponential_decay(
      lr, decay_steps, schedule_config.get("decay_rate", 1.0), staircase=True
    )
  raise ValueError(
    f"config.schedule.name={name!r} is unknown; choose constant, logspace, cosine or step."
  )


@dataclasses.dataclass(frozen=True)
class TrainableParams:
  """NNX filter: the nnx.Param variables whose path ('fc6/cores/0') the regex `pattern`
  finds (re.search); an empty pattern takes every parameter."""

  pattern: str = ""

  def __call__(self, path, value) -> bool:
    if not isinstance(value, nnx.Param):
      return False
    return not self.pattern or re.search(self.pattern, path_name(path)) is not None


def path_name(path) -> str:
  return "/".join(str(part) for part in path)


def trainable_params(model, pattern: str) -> TrainableParams:
  """The filter for config.trainable, checked to compile and to take at least one parameter."""
  try:
    re.compile(pattern)
  except re.error as error:
    raise ValueError(f"config.trainable={pattern!r} is not a valid regex: {error}.") from None
  wanted = TrainableParams(pattern)
  names = [path_name(path) for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]
  if pattern and not any(re.search(pattern, name) for name in names):
    raise ValueError(
      f"config.trainable={pattern!r} matches no parameter; parameter paths look like "
      f"{', '.join(names[:4])}."
    )
  return wanted


def make_optimizer(optimizer_config, schedule: optax.Schedule) -> optax.GradientTransformation:
  """SGD (momentum), Adam or AdamW; weight_decay is L2 added to the gradient (AdamW: decoupled)."""
  name, decay = optimizer_config.name, optimizer_config.weight_decay
  if name == "sgd":
    core = optax.sgd(
      schedule, momentum=optimizer_config.momentum or None, nesterov=optimizer_config.nesterov
    )
  elif name == "adam":
    core = optax.adam(schedule)
  elif name == "adamw":
    return optax.adamw(schedule, weight_decay=decay)
  else:
    raise ValueError(f"config.optimizer.name={name!r} is unknown; choose sgd, adam or adamw.")
  return optax.chain(optax.add_decayed_weights(decay), core) if decay else core


def with_layer_rates(tx: optax.GradientTransformation, model, wrt=nnx.Param):
  """`tx` with each parameter's update scaled by its `lr_scale` metadata, where a layer
  asks for one (BTT's per-core rates, Qiu et al. 2024); `tx` itself when none does, so
  other models' optimizer states are unchanged. Use it in your own loop as the trainer
  does: nnx.Optimizer(model, with_layer_rates(tx, model), wrt=nnx.Param)."""
  flat = nnx.to_flat_state(nnx.state(model, wrt))
  rates = {path: float(v.get_metadata().get("lr_scale", 1.0)) for path, v in flat}
  if all(rate == 1.0 for rate in rates.values()):
    return tx
  scales = nnx.from_flat_state([(path, rates[path]) for path, _ in flat])

  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u, k: u * jnp.asarray(k, u.dtype), updates, scales), state

  return optax.chain(tx, optax.GradientTransformation(lambda _: optax.EmptyState(), update))
