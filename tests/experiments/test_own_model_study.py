"""The own-model study's training loop resumes a killed run exactly (experiments/own_model)."""

import os
import sys

import jax
import numpy as np
from flax import nnx

sys.path.insert(
  0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "experiments", "own_model")
)
import models  # noqa: E402
import study  # noqa: E402


def _data(n=256):
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(n, 28, 28, 1)).astype(np.float32)
  y = rng.integers(0, 10, size=n).astype(np.int32)
  return x, y, x[:64], y[:64]


def _weights(model):
  return jax.tree.leaves(nnx.state(model, nnx.Not(nnx.RngKey)))


def test_training_killed_after_an_epoch_resumes_to_the_uninterrupted_result(tmp_path):
  data = _data()
  build = lambda: models.CNN(rngs=nnx.Rngs(params=0, dropout=1))  # noqa: E731
  straight = study.train(build(), data, 2, seed=3, learning_rate=1e-3, batch=64)
  checkpoint = tmp_path / "run.training.npz"
  # The "killed" run: it finished one epoch and wrote its state; a fresh process resumes.
  first = study.train(build(), data, 1, seed=3, learning_rate=1e-3, batch=64, checkpoint=checkpoint)
  assert int(np.load(checkpoint)["epochs_done"]) == 1
  resumed = study.train(
    build(), data, 2, seed=3, learning_rate=1e-3, batch=64, checkpoint=checkpoint
  )
  assert int(np.load(checkpoint)["epochs_done"]) == 2
  for a, b in zip(_weights(straight), _weights(resumed), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Resuming really continued from the saved epoch rather than retraining from scratch.
  moved = [not np.array_equal(a, b) for a, b in zip(_weights(first), _weights(resumed))]
  assert any(moved)
