"""train(config, workdir): the one training loop every experiment uses.

What it runs is built by setup.py (input, model, optimizer, state) and step.py
(the jitted step); train_log.py writes the metrics, divergence.py checks them.

A run is its workdir (local or gs://): process 0 holds its lock; every
checkpoint holds the whole state and the config; a resume under a config that
changes what is trained is refused (resume_check.py); the metrics log is cut
back to the restored step. The loop ends one of four ways (errors.py):
finished, preempted (SIGTERM: saved, exit 75), diverged (non-finite loss,
nothing saved after it, exit 3) or failed.
"""

from __future__ import annotations

import functools
import typing

import jax
import ml_collections

from tnjax import errors
from tnjax import fileio
from tnjax.training import checkpoint as checkpoint_lib
from tnjax.training import divergence
from tnjax.training import evaluation
from tnjax.training import preemption
from tnjax.training import resume_check
from tnjax.training import run_files
from tnjax.training import run_lock
from tnjax.training import setup as setup_lib
from tnjax.training import step as step_lib
from tnjax.training import train_log
from tnjax.training import validate
from tnjax.training import writers

RESULT, DIVERGED, CONFIG = run_files.RESULT, run_files.DIVERGED, run_files.CONFIG


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


def _restore(
  config, workdir, checkpointer, setup: setup_lib.Setup, allow_config_change: bool, is_main
):
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
  """Trains config.model on config.data in `workdir` (also `tn.train`), resuming it if it
  holds checkpoints.

  Args:
    config: a trainer config (tnjax.load_config, or training.schema.base_config()), or
      what load_config takes: 'path.py[:arg]' or a packaged config's name.
    workdir: the run's directory, local or gs://.
    allow_config_change: resume even if the config changed what is trained (recorded
      in config_history.jsonl).

  Returns:
    Trained(result, state): result.json's dict (test accuracy, parameters, ...) and
    the final state pytree.

  Raises:
    errors.UserError (bad config or data, workdir held by another trainer),
    errors.Preempted (saved; rerun to resume) or errors.Diverged.
  """
  config = _as_config(config)
  with errors.input_errors_are_user_errors():
    validate.validate_config(config)  # before any data load or compilation
  is_main = jax.process_index() == 0
  existed = fileio.workdir_path(workdir).exists()
  workdir = fileio.check_workdir(workdir) if is_main else fileio.workdir_path(workdir)
  try:
    with run_lock.held_for_training(workdir, is_main) as lock:
      return Trained(*_train(config, workdir, allow_config_change, is_main, lock.check))
  except errors.UserError:
    if is_main and not existed:  # a start refused (bad data path, ...): leave no empty workdir
      run_lock.remove_if_only_the_lock(workdir)
    raise


def _as_config(config) -> ml_collections.ConfigDict:
  """The config itself, or the one a config path / packaged name loads; else one line."""
  if isinstance(config, str):
    from tnjax import config_lib  # pylint: disable=g-import-not-at-top

    return config_lib.load_config(config)
  if not isinstance(config, ml_collections.ConfigDict):
    raise errors.UserError(
      f"train takes an ml_collections.ConfigDict (tnjax.load_config(...)) or a config path "
      f"such as 'tt_mnist:synthetic', not a {type(config).__name__}."
    )
  return config


def _train(config, workdir, allow_config_change: bool, is_main: bool, check_lock):
  with errors.input_errors_are_user_errors():  # the config's model, data and weights
    setup = setup_lib.build(config, is_main, _fitted_arrays(workdir))
  if is_main:
    _check_records_have_checkpoints(workdir, (workdir / run_files.CHECKPOINTS).exists())
  checkpointer = checkpoint_lib.Checkpointer(
    workdir / run_files.CHECKPOINTS,
    keep=config.checkpoint.keep,
    async_save=config.checkpoint.async_save,
  )
  start, state = _restore(config, workdir, checkpointer, setup, allow_config_change, is_main)
  finished = fileio.read_json(workdir / RESULT) if start == setup.total_steps else None
  if finished is not None:  # a rerun of a finished run: nothing to train, nothing written
    checkpointer.close()
    _say(is_main, f"{workdir} is finished (step {start}); nothing to train.")
    return finished, state
  if start:
    _say(is_main, f"Resumed from {checkpointer.directory} at step {start}.")
  writer = _open_run_files(config, workdir, setup.data, start, is_main, check_lock)
  config_dict, data = config.to_dict(), setup.data
  train_step = step_lib.TrainStep(
    setup.graphdef, data.fetch_train, config.data.augment, config.seed, setup.shardings
  )
  run_eval = evaluation.evaluator(setup, data)
  checkpoint_every = config.checkpoint.every_steps or data.steps_per_epoch
  watcher, log = (
    preemption.PreemptionWatcher(),
    train_log.TrainLog(config, setup, writer, start, is_main),
  )
  if is_main:  # a finished run continued (more epochs): not finished until it ends again
    (workdir / RESULT).unlink(missing_ok=True)
  leaves = train_step.flatten(state)  # the loop keeps the state flat (step.py says why)
  try:
    for step, batch_indices in zip(range(start + 1, setup.total_steps + 1), data.train_refs(start)):
      leaves, metrics = train_step.run(leaves, data.arrays, batch_indices)
      log.window.append(metrics)
      end_of_epoch = step % data.steps_per_epoch == 0
      if step % config.log_every_steps == 0 or end_of_epoch:
        divergence.check_losses(log.window, step)
        log.write(step)
      if end_of_epoch:
        state = train_step.unflatten(leaves)  # the next step donates these leaves: use it now
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
        _save(checkpointer, writer, log, step, train_step.unflatten(leaves), config_dict)
      if preempted:
        raise watcher.stop(step)
    result = _summary(
      writer.records,
      {
        "num_params": setup.num_params,
        "step": setup.total_steps,
        "train_step_compilations": train_step.compilations,
      },
    )  # 1 unless shapes changed
    state = train_step.unflatten(leaves)
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
  _say(is_main, _done_line(result, config))
  return result, state


def _done_line(result: dict, config) -> str:
  split = setup_lib.evaluated_split(config)
  return (
    f"Done: step {result['step']}, {split} accuracy {result['test_accuracy']:.4f}, "
    f"{result['num_params']:,} parameters."
  )


def _fitted_arrays(workdir) -> dict | None:
  """The inputs' fitted arrays (mean image, ZCA) of the run's first start (or, for a
  compressed run, its source's): a resume or a fine-tune on other examples keeps them.
  None before anything trained (a start that failed): they are fitted afresh."""
  trained = (
    checkpoint_lib.saved_steps(workdir / run_files.CHECKPOINTS)
    or (workdir / run_files.COMPRESSED_INIT).exists()
  )
  return fileio.read_npz(workdir / run_files.PREPROCESSING) if trained else None


def _say(is_main: bool, line: str) -> None:
  if is_main:
    print(line, flush=True)


def _open_run_files(config, workdir, data, start: int, is_main: bool, check_lock):
  """The run's metrics writer, after writing what readers of the workdir need besides the
  checkpoints (the config, the input pipeline, the preprocessing arrays) and clearing a
  past divergence or failure: the run trains again."""
  # Every write into the workdir first checks that the lock is still this run's (gs://).
  writer = writers.MetricWriter(workdir, config, resumed_step=start, before_write=check_lock)
  writer.write_json(CONFIG, config.to_dict())  # readable without orbax: reports and sweeps
  # What serving must do to raw examples (tnjax.export, tnjax.load_predict).
  writer.write_json(run_files.INPUT_PIPELINE, data.pipeline)
  if is_main and data.preprocessing:  # e.g. the mean image: needed to feed the model later
    fileio.write_npz(workdir / run_files.PREPROCESSING, data.preprocessing)
  if is_main:  # training again (e.g. with a lower learning rate): no longer diverged or failed
    (workdir / DIVERGED).unlink(missing_ok=True)
    (workdir / run_files.FAILED).unlink(missing_ok=True)
  return writer


def _save(checkpointer, writer, log: train_log.TrainLog, step: int, state, config_dict) -> None:
  """Saves only a finite state: a diverged run keeps its last good checkpoint."""
  divergence.check_losses(log.window, step)
  divergence.check_state(state, step)
  checkpointer.save(step, state, config_dict)
  writer.flush()
