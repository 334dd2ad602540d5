"""Run in a fresh process with 8 fake CPU devices (XLA_FLAGS set by the caller).

Trains one small config without a mesh and on 1x8 / 8x1 / 2x4 meshes, and prints
the largest differences of the final parameters and losses from the unsharded run.
"""

import json
import sys

import jax
import numpy as np
from flax import nnx

from tnjax.training import schema as config_schema
from tnjax.training import trainer

assert jax.device_count() == 8, jax.devices()


def config(mesh):
  c = config_schema.base_config()
  c.data.source, c.data.name = "synthetic", "synthetic"
  c.data.synthetic.update(image_shape=(8, 8, 1), num_classes=10, num_train=256, num_test=64)
  c.model.update(name="fc2", hidden_features=64, layers={"hidden": {"kind": "tt", "ranks": 4}})
  c.update(
    num_epochs=2, batch_size=32, eval_batch_size=64, progress_bar=False, mesh_min_shard_size=64
  )
  c.checkpoint.async_save = False
  c.mesh.update(mesh)
  return c


def params(state):
  return [np.asarray(x) for x in jax.tree.leaves(nnx.State(state["model"]).filter(nnx.Param))]


results = {}
base, base_state = trainer.train(config({}), sys.argv[1] + "/single")
for name, mesh in {
  "data8": {"data": 8},
  "model8": {"data": 1, "model": 8},
  "data2_model4": {"data": 2, "model": 4},
}.items():
  run, run_state = trainer.train(config(mesh), f"{sys.argv[1]}/{name}")
  shardings = {
    str(x.sharding.spec)
    for x in jax.tree.leaves(run_state)
    if hasattr(x, "sharding") and hasattr(x.sharding, "spec")
  }
  results[name] = {
    "param_diff": max(
      float(np.max(np.abs(a - b))) for a, b in zip(params(base_state), params(run_state))
    ),
    "loss_diff": abs(base["train_loss"] - run["train_loss"]),
    "test_loss_diff": abs(base["test_loss"] - run["test_loss"]),
    "model_sharded": any("model" in s for s in shardings),
    "compilations": run["train_step_compilations"],
  }
print("RESULTS " + json.dumps(results))
