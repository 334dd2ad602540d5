"""train(config, workdir): the one training loop every experiment uses.

The state (model + optimizer) is split once into a static graphdef and a pytree;
the step is a plain `jax.jit` over the pytree with the state donated, so XLA
updates it in place and compiles exactly once (fixed batch shapes). The input
(tnjax.data.Input) hands the step a batch reference and a pure fetch traced
into it, so in-memory data are gathered on the device.

A run is its workdir (local or gs://): process 0 holds its lock; every
checkpoint holds the whole state and the config; a resume under a config that
changes what is trained is refused (resume_check.py); the metrics log is cut
back to the restored step. The loop ends one of four ways (errors.py):
finished, preempted (SIGTERM: saved, exit 75), diverged (non-finite loss,
nothing saved after it, exit 3) or failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import time
import typing

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm import auto as tqdm
from flax import nnx

from tnjax.training import checkpoint as checkpoint_lib
from tnjax import data as data_lib
from tnjax import errors
from tnjax import fileio
from tnjax import models
from tnjax.training import evaluation
from tnjax.training import optim
from tnjax.training import preemption
from tnjax.training import pretrained as pretrained_lib
from tnjax.training import resume_check
from tnjax.training import run_files
from tnjax.training import run_lock
from tnjax import sharding as sharding_lib
from tnjax.training import validate
from tnjax.training import writers
from tnjax.data import augment as augment_lib
from tnjax.nn import format_table, total_params

RESULT, DIVERGED, CONFIG = run_files.RESULT, run_files.DIVERGED, run_files.CONFIG


class TrainStep:
  """The run's jitted SGD step, `step(state, arrays, batch_indices) -> (state, metrics)` on
  the batch `fetch(arrays, batch_indices)`, closed over what stays fixed for the run.
  `compilations` counts its traces: 1 unless the shapes it is called with change."""

  def __init__(
    self, graphdef, fetch, augmentation: str, seed: int, shardings=None, *, donate_state=True
  ):
    self.compilations = 0

    def step(state, arrays, batch_indices):
      self.compilations += 1  # Python runs here only while JAX traces
      x, y = fetch(arrays, batch_indices)
      parts = nnx.merge(graphdef, state)
      model, optimizer = parts["model"], parts["optimizer"]
      model.train()
      if shardings is not None:  # data parallel: each device takes its slice of the batch
        x, y = jax.lax.with_sharding_constraint((x, y), shardings["batch"])
      # The augmentation key depends only on (seed, step): resumed runs see the same crops.
      key = jax.random.fold_in(jax.random.key(seed), optimizer.step[...])
      x = augment_lib.augment(augmentation, key, x)

      def loss_fn(model):
        logits = model(x)
        return evaluation.cross_entropy(logits, y).mean(), logits

      # Gradients only for what the optimizer trains (config.trainable); the rest stays frozen.
      trainable = nnx.DiffState(0, optimizer.wrt)
      (loss, logits), grads = nnx.value_and_grad(loss_fn, argnums=trainable, has_aux=True)(model)
      optimizer.update(model, grads)
      accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
      new_state = nnx.state(parts)
      if shardings is not None:  # keep the input layout: the next step reuses this compilation
        new_state = jax.lax.with_sharding_constraint(new_state, shardings["state"])
      return new_state, {"loss": loss, "accuracy": accuracy}

    self._step = jax.jit(step, donate_argnums=0 if donate_state else ())

  def __call__(self, state, arrays, batch_indices):
    return self._step(state, arrays, batch_indices)


@jax.jit
def _all_finite(state) -> jax.Array:
  leaves = [
    jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.inexact)
  ]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


@dataclasses.dataclass
class _Setup:
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


def _build(config, is_main: bool) -> _Setup:
  """Mesh, input, model (+ pretrained weights), optimizer; prints the run's header."""
  mesh = sharding_lib.make_mesh(config.get("mesh"))
  if mesh is not None:
    sharding_lib.check_batch(config.batch_size, mesh)
  data = data_lib.make_input(config, mesh)
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
  return _Setup(
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


class _TrainLog:
  """Training metrics between log steps: means, examples/s, progress bar, divergence check."""

  def __init__(self, config, setup: _Setup, writer, start_step: int, is_main: bool):
    self.config, self.setup, self.writer = config, setup, writer
    self.window, self.window_start = [], time.perf_counter()
    self.epoch_start = self.window_start if start_step % setup.data.steps_per_epoch == 0 else None
    self.progress = tqdm.tqdm(
      total=setup.total_steps,
      initial=start_step,
      unit="step",
      disable=not (config.progress_bar and is_main),
      dynamic_ncols=True,
    )

  def check_finite(self, step: int) -> None:
    losses = np.asarray(jax.device_get([m["loss"] for m in self.window]))
    if losses.size and not np.all(np.isfinite(losses)):
      bad = step - len(losses) + 1 + int(np.argmin(np.isfinite(losses)))
      raise errors.Diverged(
        f"the training loss became {losses[~np.isfinite(losses)][0]} at step "
        f"{bad}; nothing was saved after it. Lower the learning rate "
        f"(config.schedule.learning_rate) or check the data."
      )

  def write(self, step: int) -> dict:
    self.check_finite(step)
    means = {
      k: float(np.mean(v))
      for k, v in jax.device_get(jax.tree.map(lambda *xs: np.stack(xs), *self.window)).items()
    }
    seconds = time.perf_counter() - self.window_start
    steps_per_epoch = self.setup.data.steps_per_epoch
    record = {
      "train_loss": means["loss"],
      "train_accuracy": means["accuracy"],
      "examples_per_sec": len(self.window) * self.config.batch_size / seconds,
      "learning_rate": float(self.setup.schedule(step - 1)),
      "epoch": step / steps_per_epoch,
    }
    self.writer.write(step, record)
    self.progress.set_description(f"epoch {-(-step // steps_per_epoch)}/{self.config.num_epochs}")
    self.progress.set_postfix(loss=f"{means['loss']:.4f}", acc=f"{means['accuracy']:.3f}")
    self.progress.update(len(self.window))
    self.window, self.window_start = [], time.perf_counter()
    return record

  def announce(self, evaluated: dict) -> None:
    """One console line per evaluation (above the progress bar, in notebooks too)."""
    line = (
      f"epoch {evaluated['epoch']}/{self.config.num_epochs}: {evaluated_split(self.config)} loss "
      f"{evaluated['test_loss']:.4f}, accuracy {100 * evaluated['test_accuracy']:.2f}%"
    )
    if evaluated.get("epoch_seconds"):
      examples = self.setup.data.steps_per_epoch * self.config.batch_size
      line += f", {examples / evaluated['epoch_seconds']:,.0f} train examples/s"
    tqdm.tqdm.write(line)

  def epoch_seconds(self, state) -> dict:
    """Seconds of training in the epoch just ended, if it ran whole in this process."""
    out = {}
    if self.epoch_start is not None:
      jax.block_until_ready(state)
      out["epoch_seconds"] = time.perf_counter() - self.epoch_start
    self.epoch_start = time.perf_counter()
    return out


def _check_not_past_the_end(workdir, step: int, total_steps: int, config) -> None:
  """result.json must describe the checkpoint beside it: a run cannot be 'continued' to
  fewer steps than it already trained."""
  if step > total_steps:
    raise errors.UserError(
      f"{workdir} is trained to step {step}, past the {total_steps} steps of "
      f"config.num_epochs={config.num_epochs}; a run cannot be shortened. Train at least as "
      "many epochs, or start the shorter run in a new --workdir."
    )


def _check_records_have_checkpoints(workdir, had_checkpoints: bool) -> None:
  """Records of a run whose checkpoints/ is gone would be overwritten by a run from step 0."""
  if had_checkpoints:
    return
  left = [n for n in (RESULT, run_files.METRICS) if (workdir / n).exists()]
  if left and (RESULT in left or fileio.read_jsonl(workdir / run_files.METRICS)):
    raise errors.UserError(
      f"{workdir} holds {' and '.join(left)} but no {run_files.CHECKPOINTS}/ (deleted?): "
      f"training would start from step 0 over them. To start over, delete "
      f"{' and '.join(left)} (or the whole workdir); else restore {run_files.CHECKPOINTS}/."
    )


def _restore(config, workdir, checkpointer, setup: _Setup, allow_config_change: bool, is_main):
  """(step, state) from the newest readable checkpoint, after checking the config."""
  check = functools.partial(
    resume_check.check_resume,
    workdir,
    current=config.to_dict(),
    allow_change=allow_config_change,
    record=is_main,
  )

  def check_config(step, saved):
    _check_not_past_the_end(workdir, step, setup.total_steps, config)
    check(step, saved)

  step, restored, _ = checkpointer.restore_latest(setup.state, check_config=check_config)
  if restored is None:
    return 0, setup.state
  if is_main:
    print(f"Resumed from {checkpointer.directory} at step {step}.", flush=True)
  return int(step), restored


def _summary(records: list[dict], extra: dict) -> dict:
  """The last value of every metric in the log, the best test accuracy and its epoch
  (what CPAC-Conv's authors report), plus `extra`: what result.json holds."""
  summary = {}
  for record in records:
    summary.update({k: v for k, v in record.items() if k != "time"})
  evaluations = [r for r in records if "test_accuracy" in r and "epoch" in r]
  if evaluations:
    best = max(evaluations, key=lambda r: r["test_accuracy"])  # the first of equals
    summary.update(best_test_accuracy=best["test_accuracy"], best_epoch=best["epoch"])
  summary.update(extra)
  return {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}


class Trained(typing.NamedTuple):
  """What `train` returns: result.json's dict and the final state pytree."""

  result: dict
  state: object


def train(config: ml_collections.ConfigDict, workdir, *, allow_config_change: bool = False):
  """Trains config.model on config.data in `workdir`; returns Trained(result, state).

  The result dict is also written to WORKDIR/result.json. Raises errors.UserError
  (bad config or data, workdir held by another trainer), errors.Preempted (saved;
  rerun to resume) or errors.Diverged.
  """
  with errors.input_errors_are_user_errors():
    validate.validate_config(config)  # before any data load or compilation
  is_main = jax.process_index() == 0
  workdir = fileio.check_workdir(workdir) if is_main else fileio.workdir_path(workdir)
  with _workdir_lock(workdir, is_main) as lock:
    return Trained(*_train(config, workdir, allow_config_change, is_main, lock.check))


def _train(config, workdir, allow_config_change: bool, is_main: bool, check_lock):
  with errors.input_errors_are_user_errors():  # the config's model, data and weights
    setup = _build(config, is_main)
  if is_main:
    _check_records_have_checkpoints(workdir, (workdir / run_files.CHECKPOINTS).exists())
  checkpointer = checkpoint_lib.Checkpointer(
    workdir / run_files.CHECKPOINTS,
    keep=config.checkpoint.keep,
    async_save=config.checkpoint.async_save,
  )
  start, state = _restore(config, workdir, checkpointer, setup, allow_config_change, is_main)
  # Every write into the workdir first checks that the lock is still this run's (gs://).
  writer = writers.MetricWriter(workdir, config, resumed_step=start, before_write=check_lock)
  writer.write_json(CONFIG, config.to_dict())  # readable without orbax: reports and sweeps
  # What serving must do to raw examples (tnjax.export, tnjax.load_predict).
  writer.write_json(run_files.INPUT_PIPELINE, setup.data.pipeline)
  if is_main and setup.data.preprocessing:  # e.g. the mean image: needed to feed the model later
    fileio.write_npz(workdir / run_files.PREPROCESSING, setup.data.preprocessing)
  if is_main:  # training again (e.g. with a lower learning rate): no longer diverged or failed
    (workdir / DIVERGED).unlink(missing_ok=True)
    (workdir / run_files.FAILED).unlink(missing_ok=True)
  config_dict, data = config.to_dict(), setup.data
  train_step = TrainStep(
    setup.graphdef, data.fetch_train, config.data.augment, config.seed, setup.shardings
  )
  run_eval = evaluation.evaluator(setup, data)
  checkpoint_every = config.checkpoint.every_steps or data.steps_per_epoch
  watcher, log = preemption.PreemptionWatcher(), _TrainLog(config, setup, writer, start, is_main)
  previous_result = fileio.read_json(workdir / RESULT) if start == setup.total_steps else None
  if is_main and previous_result is None:  # a finished run continued (more epochs): not done
    (workdir / RESULT).unlink(missing_ok=True)
  try:
    for step, batch_indices in zip(range(start + 1, setup.total_steps + 1), data.train_refs(start)):
      state, metrics = train_step(state, data.arrays, batch_indices)
      log.window.append(metrics)
      end_of_epoch = step % data.steps_per_epoch == 0
      if step % config.log_every_steps == 0 or end_of_epoch:
        log.write(step)
      if end_of_epoch:
        evaluated = {
          **run_eval(state),
          "epoch": step // data.steps_per_epoch,
          **log.epoch_seconds(state),
        }
        writer.write(step, evaluated)
        if is_main:
          log.announce(evaluated)
      preempted = watcher.reached(step)
      if preempted or step % checkpoint_every == 0 or step == setup.total_steps:
        check_lock()
        _save(checkpointer, writer, log, step, state, config_dict)
      if preempted:
        raise watcher.stop(step)
    result = previous_result or _summary(
      writer.records,
      {
        "num_params": setup.num_params,
        "step": setup.total_steps,
        "train_step_compilations": train_step.compilations,
      },
    )  # 1 unless shapes changed
    if "test_accuracy" not in result:  # the log lost its last evaluation
      result.update(run_eval(state))
    writer.write_json(RESULT, result)  # marks the run finished; sweeps skip it
  except errors.Diverged as e:
    writer.write_json(DIVERGED, {"message": str(e), "last_checkpoint": checkpointer.latest_step()})
    raise
  finally:
    log.progress.close()
    try:
      checkpointer.close()  # waits for an async save: a second signal must not cut it short
      writer.close()
    finally:
      watcher.close()
  if is_main:
    print(
      f"Done: step {result['step']}, {evaluated_split(config)} accuracy "
      f"{result['test_accuracy']:.4f}, "
      f"{result['num_params']:,} parameters.",
      flush=True,
    )
  return result, state


def _save(checkpointer, writer, log: _TrainLog, step: int, state, config_dict) -> None:
  """Saves only a finite state: a diverged run keeps its last good checkpoint."""
  log.check_finite(step)
  if not bool(_all_finite(state)):
    raise errors.Diverged(
      f"the parameters became non-finite by step {step}; nothing was saved "
      "after it. Lower the learning rate (config.schedule.learning_rate)."
    )
  checkpointer.save(step, state, config_dict)
  writer.flush()


@contextlib.contextmanager
def _workdir_lock(workdir, is_main: bool):
  """Process 0 holds the workdir's lock; every process learns whether it got it."""
  lock, busy = run_lock.WorkdirLock(workdir), None
  if is_main:
    try:
      lock.acquire()
    except errors.WorkdirBusy as e:
      busy = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    got = multihost_utils.broadcast_one_to_all(np.int32(busy is None))
    if not got and busy is None:
      busy = errors.WorkdirBusy(f"workdir {workdir} is in use by another trainer.")
  if busy is not None:
    raise busy
  try:
    yield lock
  finally:
    if is_main:
      lock.release()
