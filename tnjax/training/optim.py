"""Optimizers and learning-rate schedules from config.optimizer / config.schedule."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import jax.numpy as jnp
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
