"""train_and_evaluate(config, workdir): the one training loop every experiment uses.

The state (model + optimizer) is split once into a static graphdef and a pytree;
the step is a plain `jax.jit` over the pytree with the state donated, so XLA
updates it in place and compiles exactly once (fixed batch shapes). The data
live on the device and batches are gathered by index inside the step.

Resume: every checkpoint holds the whole state (parameters, optimizer moments,
step counter, RNG state). The data order is a function of (seed, epoch), so a
run killed at any point and restarted ends with the same parameters as one
that was never interrupted.
"""

from __future__ import annotations

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from flax import nnx

from tnjax import augment as augment_lib
from tnjax import checkpoint as checkpoint_lib
from tnjax import data as data_lib
from tnjax import data_stream
from tnjax import models
from tnjax import optim
from tnjax import pretrained as pretrained_lib
from tnjax import sharding as sharding_lib
from tnjax import writers
from tnjax.nn import format_table, total_params


def _cross_entropy(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def train_step(graphdef, augmentation, seed, shardings, state, images, labels, indices):
  """One SGD step on the batch images[indices] (data held on the device)."""
  return train_step_on_batch(graphdef, augmentation, seed, shardings, state, images[indices],
                             labels[indices])


def train_step_on_batch(graphdef, augmentation, seed, shardings, state, x, y):
  """One SGD step on the batch (x, y); returns the new state and metrics."""
  model, optimizer = nnx.merge(graphdef, state)
  model.train()
  if shardings is not None:  # data parallel: each device takes its slice of the batch
    x, y = jax.lax.with_sharding_constraint((x, y), shardings["batch"])
  # The augmentation key depends only on (seed, step): resumed runs see the same crops.
  key = jax.random.fold_in(jax.random.key(seed), optimizer.step[...])
  x = augment_lib.augment(augmentation, key, x)

  def loss_fn(model):
    logits = model(x)
    return _cross_entropy(logits, y).mean(), logits

  (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
  optimizer.update(model, grads)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
  new_state = nnx.state((model, optimizer))
  if shardings is not None:  # keep the input layout, so the next step reuses this compilation
    new_state = jax.lax.with_sharding_constraint(new_state, shardings["state"])
  return new_state, {"loss": loss, "accuracy": accuracy}


def eval_step(graphdef, state, images, labels, indices, mask):
  """Sums of loss and correct predictions over the unmasked examples of images[indices]."""
  return eval_step_on_batch(graphdef, state, images[indices], labels[indices], mask)


def eval_step_on_batch(graphdef, state, x, y, mask):
  """Sums of loss and correct predictions over the unmasked examples of a batch."""
  model, _ = nnx.merge(graphdef, state)
  model.eval()
  logits = model(x)
  return {"loss_sum": jnp.sum(_cross_entropy(logits, y) * mask),
          "correct": jnp.sum((jnp.argmax(logits, -1) == y) * mask),
          "count": jnp.sum(mask)}


def evaluate(eval_fn, state, images, labels, batch_size: int) -> dict:
  """Test loss and accuracy over every example exactly once (data on the device)."""
  indices, mask = data_lib.eval_batches(len(labels), batch_size)
  return _sum_up(eval_fn(state, images, labels, idx, m) for idx, m in zip(indices, mask))


def _sum_up(outputs) -> dict:
  totals = None
  for out in outputs:
    totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
  totals = jax.device_get(totals)
  count = max(float(totals["count"]), 1.0)
  return {"test_loss": float(totals["loss_sum"]) / count,
          "test_accuracy": float(totals["correct"]) / count}


def _check_config(config, num_train: int):
  if config.batch_size < 1 or config.eval_batch_size < 1:
    raise ValueError("config.batch_size and config.eval_batch_size must be >= 1.")
  if config.batch_size > num_train:
    raise ValueError(f"config.batch_size={config.batch_size} exceeds the {num_train} training "
                     "examples; lower it or use more data.")
  if config.num_epochs < 1:
    raise ValueError(f"config.num_epochs must be >= 1, got {config.num_epochs}.")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains config.model on config.data, evaluating on the test split each epoch.

  Returns the last logged metrics (test accuracy, parameter counts, ...).
  """
  workdir = os.path.abspath(workdir)
  is_main = jax.process_index() == 0
  streaming = config.data.source == "tfds_stream"
  if streaming:  # too big for memory (ImageNet): each process streams its share of each batch
    dataset = data_stream.stream_info(config.data)
    local_batch = data_stream.local_batch_size(config.batch_size)
    num_train, num_test = dataset.num_train, dataset.num_test
    _check_config(config, num_train * jax.process_count())
    steps_per_epoch = num_train // local_batch
  else:
    dataset = data_lib.load_dataset(config.data)
    num_train, num_test = len(dataset.train_labels), len(dataset.test_labels)
    _check_config(config, num_train)
    steps_per_epoch = num_train // config.batch_size
  total_steps = steps_per_epoch * config.num_epochs

  model = models.build_model(config.model, dataset.image_shape, dataset.num_classes,
                             rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1))
  pretrained = config.get("pretrained")
  if pretrained is not None and pretrained.path:  # before the optimizer: its moments start at 0
    loaded = pretrained_lib.load_pretrained(model, pretrained.path, pretrained.rename.to_dict())
    if is_main:
      print(f"Loaded {len(loaded)} pretrained arrays from {pretrained.path}.")
  if is_main:
    print(f"Data: {dataset.name}, {num_train} train / {num_test} test"
          f"{' per process (streamed)' if streaming else ''}, "
          f"images {dataset.image_shape}, {dataset.num_classes} classes")
    print(format_table(model), flush=True)
  schedule = optim.make_schedule(config.schedule, steps_per_epoch, config.num_epochs)
  optimizer = nnx.Optimizer(model, optim.make_optimizer(config.optimizer, schedule), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  num_params = total_params(model)
  del model, optimizer  # from here on the pytree `state` is the only copy
  mesh = sharding_lib.make_mesh(config.get("mesh"))
  shardings = None
  if mesh is not None:
    sharding_lib.check_batch(config.batch_size, mesh)
    shardings = {"batch": sharding_lib.batch_sharding(mesh), "state": sharding_lib.state_shardings(
        state, mesh, config.get("mesh_min_shard_size", 1 << 16))}
    state = jax.device_put(state, shardings["state"])

  checkpointer = checkpoint_lib.Checkpointer(
      os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep,
      async_save=config.checkpoint.async_save)
  start_step, restored = checkpointer.restore_latest(state)
  step = 0
  if restored is not None:
    state, step = restored, int(start_step)
    if is_main:
      print(f"Resumed from {checkpointer.directory} at step {step}.", flush=True)

  config_dict = config.to_dict()
  if is_main:  # readable without orbax: report scripts and sweeps read it
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      json.dump(config_dict, f, indent=1, default=str)
  writer = writers.MetricWriter(workdir, config)
  augment_lib.augment(config.data.augment, jax.random.key(0), jnp.zeros((1, 8, 8, 1)))  # checks the name
  train_fn = jax.jit(functools.partial(train_step, graphdef, config.data.augment, config.seed,
                                       shardings), donate_argnums=0)
  eval_fn = jax.jit(functools.partial(eval_step, graphdef))
  train_batch_fn = jax.jit(functools.partial(train_step_on_batch, graphdef, config.data.augment,
                                             config.seed, shardings), donate_argnums=0)
  eval_batch_fn = jax.jit(functools.partial(eval_step_on_batch, graphdef))
  if streaming:
    # Each process's part of the batch becomes its shards of one global array.
    to_device = jnp.asarray if mesh is None else functools.partial(
        jax.make_array_from_process_local_data, shardings["batch"])

    def epoch_steps(epoch, done):
      batches = data_stream.train_batches(config.data, local_batch, config.seed, epoch, done)
      for _, (x, y) in zip(range(steps_per_epoch - done), batches):
        yield train_batch_fn, (to_device(x), to_device(y))

    def run_eval(state):
      return _sum_up(eval_batch_fn(state, to_device(x), to_device(y), to_device(m))
                     for x, y, m in data_stream.eval_batches(config.data, local_batch,
                                                             -(-num_test // local_batch)))
  else:
    # Small datasets live on the device(s) whole (replicated over a mesh); batches are gathered.
    put = jnp.asarray if mesh is None else functools.partial(sharding_lib.put_global,
                                                             sharding=sharding_lib.replicated(mesh))
    train_images, train_labels = put(dataset.train_images), put(dataset.train_labels)
    test_images, test_labels = put(dataset.test_images), put(dataset.test_labels)

    def epoch_steps(epoch, done):
      batches = data_lib.epoch_batches(num_train, config.batch_size, config.seed, epoch)
      for batch_indices in batches[done:]:
        yield train_fn, (train_images, train_labels, batch_indices)

    def run_eval(state):
      return evaluate(eval_fn, state, test_images, test_labels, config.eval_batch_size)
  checkpoint_every = config.checkpoint.every_steps or steps_per_epoch
  last = {"num_params": num_params}

  while step < total_steps:
    epoch = step // steps_per_epoch
    progress = tqdm.tqdm(total=steps_per_epoch, initial=step % steps_per_epoch,
                         desc=f"epoch {epoch + 1}/{config.num_epochs}", unit="step",
                         disable=not (config.progress_bar and is_main), dynamic_ncols=True)
    window, window_start = [], time.perf_counter()
    # Seconds of training per epoch (no eval), only for epochs run whole in this process.
    epoch_start = window_start if step % steps_per_epoch == 0 else None
    for step_fn, batch in epoch_steps(epoch, step % steps_per_epoch):
      state, metrics = step_fn(state, *batch)
      window.append(metrics)
      step += 1
      end_of_epoch = step % steps_per_epoch == 0
      if step % config.log_every_steps == 0 or end_of_epoch:
        means = {k: float(np.mean(v)) for k, v in jax.device_get(
            jax.tree.map(lambda *xs: np.stack(xs), *window)).items()}
        seconds = time.perf_counter() - window_start
        train_metrics = {"train_loss": means["loss"], "train_accuracy": means["accuracy"],
                         "examples_per_sec": len(window) * config.batch_size / seconds,
                         "learning_rate": float(schedule(step - 1)),
                         "epoch": step / steps_per_epoch}
        last.update(train_metrics)
        writer.write(step, train_metrics)
        progress.set_postfix(loss=f"{means['loss']:.4f}", acc=f"{means['accuracy']:.3f}",
                             ex_per_s=f"{last['examples_per_sec']:.0f}")
        progress.update(len(window))
        window, window_start = [], time.perf_counter()
      if end_of_epoch:
        epoch_metrics = {"epoch": step // steps_per_epoch}
        if epoch_start is not None:
          jax.block_until_ready(state)
          epoch_metrics["epoch_seconds"] = time.perf_counter() - epoch_start
        last.update(run_eval(state))
        writer.write(step, {"test_loss": last["test_loss"], "test_accuracy": last["test_accuracy"],
                            **epoch_metrics})
        progress.set_postfix(loss=f"{last['train_loss']:.4f}",
                             test_acc=f"{last['test_accuracy']:.4f}")
      if step % checkpoint_every == 0 or step == total_steps:
        checkpointer.save(step, state, config_dict)
    progress.close()

  if "test_accuracy" not in last:  # resumed a finished run: report its final state
    last.update(run_eval(state))
  # 1 unless shapes changed
  last["train_step_compilations"] = (train_batch_fn if streaming else train_fn)._cache_size()
  checkpointer.close()
  writer.close()
  if is_main:  # marks the run finished; sweeps skip points that have it
    summary = {k: v for k, v in last.items() if isinstance(v, (int, float, str))}
    summary["step"] = step
    with open(os.path.join(workdir, "result.json"), "w") as f:
      json.dump(summary, f, indent=1)
  if is_main:
    print(f"Done: step {step}, test accuracy {last['test_accuracy']:.4f}, "
          f"{num_params:,} parameters.", flush=True)
  last["final_state"] = state
  return last
