"""The divergence checks: a non-finite loss or state ends the run as errors.Diverged.

Checked before every metrics record and every save, so a diverged run keeps its
last good checkpoint and nothing written after the loss went bad.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tnjax import errors


def check_losses(window: list[dict], step: int) -> None:
  """Raises Diverged if a loss among the steps ending at `step` (window: their metrics) is
  not finite, naming the first such step."""
  losses = np.asarray(jax.device_get([m["loss"] for m in window]))
  if losses.size and not np.all(np.isfinite(losses)):
    bad = step - len(losses) + 1 + int(np.argmin(np.isfinite(losses)))
    raise errors.Diverged(
      f"the training loss became {losses[~np.isfinite(losses)][0]} at step "
      f"{bad}; nothing was saved after it. Lower the learning rate "
      f"(config.schedule.learning_rate) or check the data."
    )


def check_state(state, step: int) -> None:
  """Raises Diverged if any floating-point array of the state is not finite."""
  if not bool(_all_finite(state)):
    raise errors.Diverged(
      f"the parameters became non-finite by step {step}; nothing was saved "
      "after it. Lower the learning rate (config.schedule.learning_rate)."
    )


@jax.jit
def _all_finite(state) -> jax.Array:
  leaves = [
    jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)
  ]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)
