"""What the trainer builds before its first step: mesh, input, model, optimizer, state."""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from tnjax import data as data_lib
from tnjax import errors
from tnjax import models
from tnjax import sharding as sharding_lib
from tnjax.nn import format_table, total_params
from tnjax.training import optim
from tnjax.training import pretrained as pretrained_lib


@dataclasses.dataclass
class Setup:
  """Everything built before the first step."""

  data: data_lib.Input
  graphdef: object
  state: object
  schedule: optax.Schedule
  shardings: dict | None
  num_params: int
  total_steps: int


def evaluated_split(config) -> str:
  """What the run's 'test_*' metrics measure: the test split, or (data.held_out_eval, a
  rank search's candidates) training examples held out of training."""
  return "held-out" if config.data.get("held_out_eval", 0) else "test"


def build(config, is_main: bool, fitted: dict | None = None) -> Setup:
  """Mesh, input, model (+ pretrained weights), optimizer; prints the run's header.
  `fitted`: the preprocessing arrays the run fitted at its first start (or a compressed
  run's source fitted), reused rather than fitted again."""
  mesh = sharding_lib.make_mesh(config.get("mesh"))
  if mesh is not None:
    sharding_lib.check_batch(config.batch_size, mesh)
  data = data_lib.make_input(config, mesh, fitted)
  build = lambda rngs: models.build_model(
    config.model, data.image_shape, data.num_classes, rngs=rngs, dtype=config.get("dtype")
  )
  _check_fits_in_memory(nnx.eval_shape(lambda: build(nnx.Rngs(0))))  # before allocating
  model = build(nnx.Rngs(params=config.seed, dropout=config.seed + 1))
  pretrained = config.get("pretrained")
  if pretrained is not None and pretrained.path:  # before the optimizer: its moments start at 0
    arrays = pretrained_lib.read_weights(pretrained.path)
    rename = pretrained.rename.to_dict()
    params = pretrained_lib.param_names(model)
    skipped = pretrained_lib.factorized_layers(params, [rename.get(n, n) for n in arrays])
    loaded = pretrained_lib.load_arrays(model, arrays, rename, source=pretrained.path)
    if not loaded:
      raise errors.UserError(
        f"{pretrained.path} sets none of the model's parameters (it holds "
        f"{sorted(arrays)[:6]}...); check config.pretrained.path and .rename."
      )
    if is_main:
      layers = {n.split("/")[0] for n in loaded}
      print(
        f"Loaded {len(loaded)} pretrained arrays ({len(layers)} layers) from {pretrained.path}."
      )
      for layer in skipped:  # e.g. a TT fc6 where the file has a dense fc6
        print(f"  {layer}: not loaded (factorised here; it trains from its initialisation).")
  if is_main:
    print(
      f"Data: {data.name}, {data.num_train} train / {data.num_test} "
      f"{evaluated_split(config)}, images {data.image_shape}, {data.num_classes} classes"
    )
    example = jax.ShapeDtypeStruct((config.batch_size,) + tuple(data.image_shape), jnp.float32)
    print(format_table(model, example), flush=True)
  schedule = optim.make_schedule(config.schedule, data.steps_per_epoch, config.num_epochs)
  trainable = optim.trainable_params(model, config.get("trainable", ""))
  tx = optim.with_layer_rates(optim.make_optimizer(config.optimizer, schedule), model, trainable)
  optimizer = nnx.Optimizer(model, tx, wrt=trainable)
  if is_main and trainable.pattern:
    count = sum(x.size for x in jax.tree.leaves(nnx.state(model, trainable)))
    print(f"Training {count:,} of {total_params(model):,} parameters (config.trainable).")
  # Named, so checkpoints read as model/<layer>/... and optimizer/step, opt_state/...
  graphdef, state = nnx.split({"model": model, "optimizer": optimizer})
  shardings = None
  if mesh is not None:
    shardings = {
      "batch": sharding_lib.batch_sharding(mesh),
      "state": sharding_lib.state_shardings(
        state, mesh, config.get("mesh_min_shard_size", 1 << 16)
      ),
    }
    state = jax.device_put(state, shardings["state"])
  return Setup(
    data,
    graphdef,
    state,
    schedule,
    shardings,
    total_params(model),
    data.steps_per_epoch * config.num_epochs,
  )


def _device_memory_bytes() -> int | None:
  """Memory of one device: the accelerator's limit, or the host's RAM on CPU."""
  device = jax.local_devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError):
    return None


def _check_fits_in_memory(abstract_model) -> None:
  """Refuses, in one line, a model whose parameters alone exceed a device's memory."""
  leaves = jax.tree.leaves(nnx.state(abstract_model, nnx.Param))
  needed = sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in leaves)
  available = _device_memory_bytes()
  if available is not None and needed > available:
    raise errors.UserError(
      f"the model's {sum(math.prod(x.shape) for x in leaves):,} parameters need "
      f"{needed / 1e9:,.1f} GB, more than the {available / 1e9:,.1f} GB of this device "
      "(before gradients and optimizer state); lower the ranks or sizes in config.model."
    )
