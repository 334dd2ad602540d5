"""Orbax checkpoints of the training state, with the config saved beside them.

Three calls hide Orbax from the trainer (so moving to Orbax's v1 API stays local):
`Checkpointer(dir).save(step, state, config)`, `.restore_latest(abstract_state)`,
`.close()`.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp


class Checkpointer:
  """Keeps the last `keep` checkpoints of (state, config) under `directory`."""

  def __init__(self, directory: str, *, keep: int = 3, async_save: bool = True):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        preservation_policy=pp.LatestN(keep),
        enable_async_checkpointing=async_save,
        create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=("state", "config"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, config_dict: dict) -> None:
    """Saves asynchronously; the state may be donated as soon as this returns."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config_dict)))

  def restore_latest(self, abstract_state):
    """(step, state) of the newest complete checkpoint, or (None, None) if there is none.

    `abstract_state` gives shapes, dtypes and shardings (e.g. the freshly built state).
    """
    step = self._manager.latest_step()
    if step is None:
      return None, None
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target)))
    return step, restored["state"]

  def saved_config(self, step: int | None = None) -> dict:
    """The config saved with a checkpoint: enough to rebuild the model that made it."""
    step = self._manager.latest_step() if step is None else step
    return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def restore_arrays(directory: str, step: int | None = None):
  """The saved state as nested dicts of arrays, without knowing the model (for inspection)."""
  manager = ocp.CheckpointManager(os.path.abspath(directory), item_names=("state", "config"))
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {directory}.")
  return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
