"""Orbax checkpoints of the training state, with the config saved beside them.

Three calls hide Orbax from the trainer (so moving to Orbax's v1 API stays local):
`Checkpointer(dir).save(step, state, config)`, `.restore_latest(abstract_state)`,
`.close()`. Directories may be local or gs:// (Orbax writes both natively).

Orbax only lists checkpoints whose commit finished, so a save cut short by a
kill is invisible. A checkpoint that committed and was damaged afterwards (a
truncated or deleted file) fails to restore: it is named in one line, moved
aside to WORKDIR/checkpoints_unreadable/, and the next older one is used.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping

import jax
import orbax.checkpoint as ocp
from flax import nnx
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from tnjax import errors
from tnjax import fileio
from tnjax.training import compat


class Checkpointer:
  """Keeps the last `keep` checkpoints of (state, config) under `directory`."""

  def __init__(self, directory, *, keep: int = 3, async_save: bool = True):
    self.directory = fileio.workdir_path(directory)
    options = ocp.CheckpointManagerOptions(
      preservation_policy=pp.LatestN(keep), enable_async_checkpointing=async_save, create=True
    )
    self._manager = ocp.CheckpointManager(
      self.directory, options=options, item_names=("state", "config")
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, config_dict: dict) -> None:
    """Saves asynchronously; the state may be donated as soon as this returns.

    A local disk without room for the state is refused before Orbax starts writing
    (so a full disk is one line, not a cascade of failed writer threads).
    """
    self._check_free_space(step, state)
    with self._one_line_write_errors(step):
      self._manager.save(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config_dict)
        ),
      )

  def _check_free_space(self, step: int, state) -> None:
    if fileio.is_remote(self.directory) or jax.process_index() != 0:
      return
    needed = sum(x.nbytes for x in jax.tree.leaves(state) if hasattr(x, "nbytes")) + (1 << 20)
    existing = next(p for p in (self.directory, *self.directory.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < needed:
      raise errors.UserError(
        f"cannot save the checkpoint of step {step} in {self.directory}: it needs about "
        f"{needed / 1e6:,.1f} MB and the disk has {free / 1e6:,.1f} MB free; free space "
        "and rerun the same command (it resumes from the last checkpoint)."
      )

  @contextlib.contextmanager
  def _one_line_write_errors(self, step: int | None):
    """Orbax reports a failed write (e.g. the disk filled up meanwhile) as a ValueError
    or OSError naming the OS error; that is the user's to fix: one line."""
    try:
      yield
    except (ValueError, OSError) as e:
      text = " ".join(str(e).split())
      if "No space left" in text or "os_error_code='28'" in text:
        at = f" of step {step}" if step is not None else ""
        raise errors.UserError(
          f"cannot save the checkpoint{at} in {self.directory}: no space left on device; "
          "free space and rerun the same command (it resumes from the last checkpoint)."
        ) from None
      raise

  def restore_latest(self, abstract_state, check_config=None):
    """(step, state, saved config) of the newest readable checkpoint, or (None, None, None).

    `abstract_state` gives shapes, dtypes and shardings (e.g. the freshly built state).
    `check_config(step, saved_config)` runs before the state is read and may refuse.
    """
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    self._name_unfinished()
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        config = self.saved_config(step)
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, e)
        continue
      if check_config is not None:
        check_config(step, config)
      try:
        restored = self._restore(step, target)
      except Exception as e:  # pylint: disable=broad-except
        restored = self._restore_positional(step, target)
        if restored is None:
          different = self._model_difference(step, target)
          if different:
            raise errors.UserError(
              f"checkpoint {self.directory / str(step)} holds another model than this config "
              f"builds ({different}); the config change alters the model, so train it in a "
              "new --workdir."
            ) from None
          self._set_aside(step, e)
          continue
      return step, restored, config
    return None, None, None

  def _restore(self, step: int, target):
    return self._manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
    )["state"]

  def _model_difference(self, step: int, target) -> str:
    """How the arrays saved at `step` differ from `target`'s ('' when they match, or when
    the checkpoint's metadata cannot be read: then its files are damaged, not another
    model's). Only shapes are compared: a positional checkpoint names its trees '0', '1'."""
    try:
      saved = ocp.StandardCheckpointHandler().metadata(self.directory / str(step) / "state")
      saved_shapes = sorted(tuple(m.shape) for m in jax.tree.leaves(saved))
    except Exception:  # pylint: disable=broad-except
      return ""
    wanted = sorted(tuple(x.shape) for x in jax.tree.leaves(target))
    if saved_shapes == wanted:
      return ""
    only_saved = sorted(set(saved_shapes) - set(wanted))
    only_built = sorted(set(wanted) - set(saved_shapes))
    return (
      f"{len(saved_shapes)} arrays saved, {len(wanted)} built"
      + (f"; saved shapes such as {only_saved[0]} are not built" if only_saved else "")
      + (f"; built shapes such as {only_built[0]} are not saved" if only_built else "")
    )

  def _restore_positional(self, step: int, target):
    """A checkpoint saved before trees were named ('0', '1'), read as named; None if not one."""
    if not (isinstance(target, Mapping) and set(target) == set(compat.NAMED)):
      return None
    try:
      restored = compat.named_state(self._restore(step, compat.positional_state(target)))
      return nnx.State(restored) if isinstance(target, nnx.State) else restored
    except Exception:  # pylint: disable=broad-except  # not positional: the named error stands
      return None

  def _name_unfinished(self) -> None:
    """Says which newer saves never finished (Orbax skips them silently)."""
    if jax.process_index() != 0 or not self.directory.exists():
      return
    finished = self._manager.all_steps()
    newest = max(finished, default=-1)
    for path in sorted(self.directory.iterdir(), key=str):
      step = path.name.split(".", 1)[0]
      if step.isdigit() and int(step) > newest and int(step) not in finished:
        print(
          f"tnjax: checkpoint {path} was not finished (the run stopped while saving); ignored.",
          flush=True,
        )

  def _set_aside(self, step: int, error: Exception) -> None:
    reason = " ".join(f"{type(error).__name__}: {error}".split())[:160]
    aside = self.directory.parent / "checkpoints_unreadable" / str(step)
    if jax.process_index() == 0:
      print(
        f"tnjax: checkpoint {self.directory / str(step)} is unreadable ({reason}); moved "
        f"to {aside}; using the previous one.",
        flush=True,
      )
      aside.parent.mkdir(parents=True, exist_ok=True)
      (self.directory / str(step)).rename(aside)
    self._manager.reload()

  def saved_config(self, step: int | None = None) -> dict:
    """The config saved with a checkpoint: enough to rebuild the model that made it."""
    step = self._manager.latest_step() if step is None else step
    return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))[
      "config"
    ]

  def wait(self) -> None:
    with self._one_line_write_errors(None):
      self._manager.wait_until_finished()

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self._manager.close()


def restore_arrays(directory, step: int | None = None):
  """The saved state as nested dicts of arrays, without knowing the model (for inspection).

  A training checkpoint gives {"model": {...}, "optimizer": {...}}, older positional
  ones included.
  """
  manager = ocp.CheckpointManager(fileio.workdir_path(directory), item_names=("state", "config"))
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {directory}.")
  state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
  return compat.named_state(state) if compat.is_positional(state) else state


def model_arrays(directory, step: int | None = None) -> dict:
  """The model's arrays of a training checkpoint, named like pretrained files ('fc1/kernel').

  Feed them to tnjax.training.pretrained.load_arrays to fill a model built from the run's config.
  """
  return _named_model_arrays(directory, restore_arrays(directory, step))


def _named_model_arrays(directory, state) -> dict:
  if "model" not in state:
    raise ValueError(f"{directory} does not hold a training checkpoint (no 'model' tree).")
  arrays = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(state["model"]):
    keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
    if "rngs" in keys:  # dropout's random streams are not weights
      continue
    arrays["/".join(keys[:-1] if keys[-1] == "value" else keys)] = leaf  # Variable payloads
  return arrays


def saved_steps(directory) -> list[int]:
  """The finished checkpoints' steps, oldest first ([] for none or no directory)."""
  directory = fileio.workdir_path(directory)
  if not directory.exists():
    return []
  return sorted(ocp.CheckpointManager(directory, item_names=("state", "config")).all_steps())


def read_model_arrays(directory, step: int | None = None) -> tuple[int, dict]:
  """(step, model arrays) for the programs that only read a run (evaluate, export, compress,
  tnjax.load), changing nothing in it.

  Without `step`: the newest checkpoint that reads whole; a damaged newer one is named in
  one line and skipped (training moves it aside when it resumes). A `step` that was never
  saved is a UserError listing the saved ones.
  """
  steps = saved_steps(directory)
  if step is not None:
    if step not in steps:
      raise errors.UserError(
        f"{directory} has no checkpoint at step {step}; its saved steps are "
        f"{', '.join(map(str, steps)) or 'none'} (--step takes one of them, or leave it out "
        "for the newest)."
      )
    return step, model_arrays(directory, step)
  for candidate in reversed(steps):
    try:
      return candidate, model_arrays(directory, candidate)
    except Exception as e:  # pylint: disable=broad-except  # a damaged file: try the previous
      reason = " ".join(f"{type(e).__name__}: {e}".split())[:160]
      older = [s for s in steps if s < candidate]
      then = f"using step {older[-1]}" if older else "no older checkpoint is left"
      print(
        f"tnjax: checkpoint {fileio.workdir_path(directory) / str(candidate)} is unreadable "
        f"({reason}); {then}.",
        flush=True,
      )
  raise errors.UserError(
    f"{directory} has no readable checkpoint (steps {', '.join(map(str, steps)) or 'none'}); "
    "retrain the run, or restore its checkpoints from a copy."
  )
