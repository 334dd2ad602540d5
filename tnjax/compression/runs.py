"""Runs as inputs: `load(workdir)` rebuilds a run's model from its saved config and fills
it from its newest checkpoint, for a finished, interrupted or compressed run alike."""

from __future__ import annotations

import ml_collections
from flax import nnx

from tnjax import data as data_lib
from tnjax import errors, fileio, models
from tnjax.training import checkpoint as checkpoint_lib
from tnjax.training import pretrained, run_files


def load_config_of(workdir) -> ml_collections.ConfigDict:
  """The config a run trained under: its config.json, else the one in its newest checkpoint."""
  workdir = fileio.workdir_path(workdir)
  saved = fileio.read_json(workdir / run_files.CONFIG)
  if saved is None:
    if not (workdir / run_files.CHECKPOINTS).exists():
      raise errors.UserError(
        f"{workdir} is not a tnjax run: it has neither {run_files.CONFIG} nor "
        f"{run_files.CHECKPOINTS}/; pass the workdir a training run wrote."
      )
    saved = checkpoint_lib.Checkpointer(workdir / run_files.CHECKPOINTS).saved_config()
  return ml_collections.ConfigDict(saved)


def load(workdir, *, step: int | None = None):
  """(model, config) of the run in `workdir`, the model in eval mode with the weights of
  checkpoint `step` (default: the newest)."""
  workdir = fileio.workdir_path(workdir)
  config = load_config_of(workdir)
  image_shape, num_classes = data_lib.nominal_shape(config.data)
  with errors.input_errors_are_user_errors():
    model = models.build_model(
      config.model, image_shape, num_classes, rngs=nnx.Rngs(0), dtype=config.get("dtype")
    )
  directory = workdir / run_files.CHECKPOINTS
  if directory.exists() and checkpoint_lib.Checkpointer(directory).latest_step() is not None:
    arrays, source = checkpoint_lib.model_arrays(directory, step), directory
  elif (workdir / run_files.COMPRESSED_INIT).exists():  # compressed, not fine-tuned (yet)
    source = workdir / run_files.COMPRESSED_INIT
    arrays = pretrained.read_weights(str(source))
  else:
    raise errors.UserError(
      f"{workdir} has no checkpoint yet (the run has not saved one); nothing to load."
    )
  pretrained.load_arrays(model, arrays, source=str(source))
  model.eval()
  return model, config
