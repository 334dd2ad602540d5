"""TrainStep's flat-state loop (what the trainer runs) against its State-in, State-out call."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from tnjax.training import step as step_lib


class _MLP(nnx.Module):
  def __init__(self, rngs):
    self.hidden, self.out = nnx.Linear(6, 5, rngs=rngs), nnx.Linear(5, 3, rngs=rngs)

  def __call__(self, x):
    return self.out(jax.nn.relu(self.hidden(x)))


def _setup():
  model = _MLP(nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  graphdef, state = nnx.split({"model": model, "optimizer": optimizer})
  x = jax.random.normal(jax.random.key(1), (8, 6))
  y = jnp.arange(8) % 3
  fetch = lambda arrays, idx: (arrays[0][idx], arrays[1][idx])  # noqa: E731
  return graphdef, state, fetch, (x, y)


def test_flat_steps_equal_plain_nnx_steps_and_compile_once():
  graphdef, state, fetch, arrays = _setup()
  step = step_lib.TrainStep(graphdef, fetch, "", 0, donate_state=False)
  # The reference: the same model and optimizer stepped by a plain nnx loop.
  parts = nnx.merge(graphdef, state)
  model, optimizer = parts["model"], parts["optimizer"]
  leaves = step.flatten(state)
  for i in range(3):
    idx = jnp.arange(4) + 4 * (i % 2)
    leaves, metrics = step.run(leaves, arrays, idx)
    x, y = fetch(arrays, idx)
    loss_fn = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()  # noqa: B023,E731
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-6)
  stepped = step.unflatten(leaves)
  for name in ("hidden", "out"):
    for field in ("kernel", "bias"):
      np.testing.assert_allclose(
        stepped["model"][name][field][...], getattr(getattr(model, name), field)[...], rtol=1e-5
      )
  assert int(stepped["optimizer"]["step"][...]) == 3
  assert step.compilations == 1
  # The State-in, State-out call runs the same compiled step (on a fresh state: the reference
  # loop above stepped the variables `state` shares with `model`).
  again, _ = step(_setup()[1], arrays, jnp.arange(4))
  assert step.compilations == 1 and int(again["optimizer"]["step"][...]) == 1


def test_a_state_of_another_structure_is_refused():
  graphdef, state, fetch, _ = _setup()
  step = step_lib.TrainStep(graphdef, fetch, "", 0)
  with pytest.raises(ValueError, match=r"flatten first\.$"):
    step.run(jax.tree.leaves(state), None, None)
  step.flatten(state)
  with pytest.raises(ValueError, match=r"another state \(\d+ arrays\); this one has 4"):
    step.flatten(nnx.state(_MLP(nnx.Rngs(1))))
