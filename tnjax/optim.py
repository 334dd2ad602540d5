"""Optimizers and learning-rate schedules from config.optimizer / config.schedule."""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp
import optax


def make_schedule(schedule_config, steps_per_epoch: int, num_epochs: int) -> optax.Schedule:
  """Learning rate as a function of the step.

  logspace: Novikov et al.'s schedule, one value per epoch, log-spaced from
    learning_rate to end_learning_rate over decay_epochs, then held.
  cosine: per-step cosine decay to end_learning_rate after optional linear warm-up.
  """
  name = schedule_config.name
  lr, end = schedule_config.learning_rate, schedule_config.end_learning_rate
  total_steps = steps_per_epoch * num_epochs
  if name == "constant":
    return optax.constant_schedule(lr)
  if name == "logspace":
    decay_epochs = schedule_config.decay_epochs or num_epochs
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
  raise ValueError(
    f"config.schedule.name={name!r} is unknown; choose constant, logspace or cosine."
  )


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
