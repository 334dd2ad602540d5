"""The divergence checks the trainer runs before each metrics record and each save."""

import jax.numpy as jnp
import numpy as np
import pytest

from tnjax import errors
from tnjax.training import divergence


def _window(losses):
  return [{"loss": jnp.asarray(v, jnp.float32), "accuracy": jnp.asarray(0.5)} for v in losses]


def test_a_finite_window_passes_and_the_first_bad_step_is_named():
  divergence.check_losses(_window([2.3, 1.9, 1.7]), step=30)
  divergence.check_losses([], step=0)  # nothing logged yet
  # Steps 28, 29, 30 end at step 30: the first non-finite loss is step 29's.
  with pytest.raises(errors.Diverged, match=r"became nan at step 29; nothing was saved"):
    divergence.check_losses(_window([2.3, np.nan, np.inf]), step=30)
  with pytest.raises(errors.Diverged, match=r"became inf at step 12"):
    divergence.check_losses(_window([np.inf]), step=12)


def test_a_state_with_any_non_finite_float_is_refused_and_integers_are_ignored():
  state = {"w": jnp.ones((3, 2)), "step": jnp.asarray(7, jnp.int32), "b": jnp.zeros(2)}
  divergence.check_state(state, step=5)
  divergence.check_state({"step": jnp.asarray(1)}, step=1)  # no float leaves at all
  bad = {**state, "b": jnp.asarray([0.0, jnp.nan])}
  with pytest.raises(errors.Diverged, match=r"non-finite by step 5; nothing was saved"):
    divergence.check_state(bad, step=5)
