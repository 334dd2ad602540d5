"""Runs as inputs: `load(workdir)` rebuilds a run's model from its saved config and fills
it from its newest readable checkpoint, for a finished, interrupted or compressed run
alike; `load_predict(workdir)` gives the function that serves it: the data set's own
examples in, logits out, the run's eval pipeline inside."""

from __future__ import annotations

import numbers

import jax
import ml_collections
import numpy as np
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
  """A trained (or compressed) run, ready for inference.

  Args:
    workdir: the run's directory, local or gs://.
    step: the checkpoint to read; None: the newest readable one.

  Returns:
    (model, config): the model in eval mode with that checkpoint's weights, and the
    run's config.
  """
  if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
    raise errors.UserError(f"step={step!r} must be a whole number: a saved checkpoint's step.")
  workdir = fileio.workdir_path(workdir)
  config = load_config_of(workdir)
  image_shape, num_classes = data_lib.nominal_shape(config.data)
  with errors.input_errors_are_user_errors():
    model = models.build_model(
      config.model, image_shape, num_classes, rngs=nnx.Rngs(0), dtype=config.get("dtype")
    )
  directory = workdir / run_files.CHECKPOINTS
  if checkpoint_lib.saved_steps(directory) or step is not None:
    arrays, source = checkpoint_lib.read_model_arrays(directory, step)[1], directory
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


def unfinished_note(workdir, step: int | None = None) -> str | None:
  """What a reader of a run that has not finished should know about the weights `load`
  gives (None for a finished run): the step they are from, or that a compressed run's are
  the converted, not fine-tuned, ones."""
  workdir = fileio.workdir_path(workdir)
  state = run_files.status(workdir)
  if state == "finished":
    return None
  saved = checkpoint_lib.saved_steps(workdir / run_files.CHECKPOINTS)
  if not saved and step is None:
    if (workdir / run_files.COMPRESSED_INIT).exists():
      return f"{workdir} is converted, not fine-tuned: these are the converted weights."
    return None
  at = step if step is not None else max(saved)
  what = {"running": "still training", "diverged": "diverged"}.get(state, "not finished")
  return f"{workdir} is {what}: these are the weights of its checkpoint at step {at}."


class Predictor:
  """`predict(examples) -> logits` for a run: examples as the data set stores them (see
  `input`, e.g. uint8 (batch, 28, 28, 1)), the run's eval pipeline and model inside, jitted.

  Attributes: model, config, pipeline (input_pipeline.json's record), input (its contract).
  """

  def __init__(self, model, config, pipeline: dict, arrays: dict):
    from tnjax.compression import serving  # pylint: disable=g-import-not-at-top

    self.model, self.config, self.pipeline = model, config, pipeline
    self.input = pipeline["input"]
    self._infer = jax.jit(serving.inference_function(model, pipeline, arrays))

  def __call__(self, examples):
    shape, dtype = tuple(self.input["shape"]), np.dtype(self.input["dtype"])
    examples = np.asarray(examples)
    if examples.shape[1:] != shape or examples.dtype != dtype:
      raise errors.UserError(
        f"predict takes {dtype} examples shaped (batch, {', '.join(map(str, shape))}) as the "
        f"data set stores them; got {examples.dtype} {examples.shape}."
      )
    return self._infer(examples)

  def __repr__(self):
    from tnjax.data import eval_pipeline  # pylint: disable=g-import-not-at-top

    return f"Predictor({eval_pipeline.describe(self.pipeline)})"


def load_predict(workdir, *, step: int | None = None) -> Predictor:
  """The run's serving function, its input pipeline included (scaling, mean image, ...).

  `predict = tnjax.load_predict("runs/fc2"); logits = predict(test_images_uint8)`.

  Args:
    workdir: the run's directory, local or gs://.
    step: the checkpoint to read; None: the newest readable one.

  Returns:
    A Predictor: called on the data set's own images (e.g. uint8, as `predict.input`
    says), it returns logits; `predict.model` and `predict.config` are the run's.
  """
  from tnjax.compression import serving  # pylint: disable=g-import-not-at-top

  model, config = load(workdir, step=step)
  return Predictor(model, config, *serving.run_input_pipeline(workdir, config))
