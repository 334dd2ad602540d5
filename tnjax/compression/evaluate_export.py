"""What `python -m tnjax.evaluate` and `python -m tnjax.export` do with a trained run."""

from __future__ import annotations

import sys

import numpy as np

from tnjax import config_lib, errors, fileio
from tnjax.training import run_files
from tnjax.training import schema as config_schema


def merged_arrays(model) -> dict[str, np.ndarray]:
  """The model's dense copy (tnjax.nn.densify) as named arrays."""
  from flax import nnx  # pylint: disable=g-import-not-at-top

  from tnjax import nn  # pylint: disable=g-import-not-at-top

  dense = nn.densify(nnx.clone(model))
  flat = nnx.to_flat_state(nnx.state(dense, nnx.Not(nnx.RngState)))
  return {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in flat}


def _check_eval_overrides(overrides: dict) -> None:
  """evaluate / export read the model as it was trained: only fields that cannot change it
  (where the data live, how many test examples, the eval batch) may be overridden."""
  changing = [k for k in overrides if not config_schema.is_harmless(k)]
  if changing:
    raise errors.UserError(
      f"--config.{changing[0]} would change the trained run; evaluate takes only overrides "
      "that leave it as it is: "
      + ", ".join(h.rstrip(".") for h in config_schema.HARMLESS_FIELDS)
      + "."
    )


def _say_if_unfinished(workdir, step) -> None:
  from tnjax.compression.runs import unfinished_note  # pylint: disable=g-import-not-at-top

  note = unfinished_note(workdir, step)
  if note is not None:
    print(f"tnjax: note: {note}", file=sys.stderr, flush=True)


def evaluate_run(workdir, *, step=None, merge: str = "", overrides=None) -> dict:
  """Test loss and accuracy of a run's checkpoint (default: the newest readable one);
  with `merge`, also writes the dense copy's arrays there."""
  from tnjax.compression import load, load_config_of  # pylint: disable=g-import-not-at-top
  from tnjax.training import evaluation, validate  # pylint: disable=g-import-not-at-top

  overrides = overrides or {}
  config_lib.apply_overrides(load_config_of(workdir), overrides)  # unknown fields: one line
  _check_eval_overrides(overrides)
  merge_path = fileio.check_output_file(merge, "--merge", ".npz") if merge else None
  model, config = load(workdir, step=step)
  _say_if_unfinished(workdir, step)
  config = config_lib.apply_overrides(config, overrides)
  with errors.input_errors_are_user_errors():
    validate.validate_config(config)
  from tnjax.compression import serving  # pylint: disable=g-import-not-at-top

  _, fitted = serving.run_input_pipeline(workdir, config)  # refitted, with a note, if lost
  metrics = evaluation.evaluate_model(model, config, fitted)
  if merge_path is not None:
    fileio.write_npz(merge_path, merged_arrays(model))
    metrics["merged"] = merge
    arrays = f", with {run_files.PREPROCESSING}'s {', '.join(sorted(fitted))}" if fitted else ""
    print(  # the weights alone do not say how their inputs were prepared
      f"tnjax: note: {merge} holds the weights only; the model expects inputs prepared as "
      f"the run's {run_files.INPUT_PIPELINE} says{arrays} (python -m tnjax.export bundles "
      "them).",
      file=sys.stderr,
      flush=True,
    )
  return metrics


def export_run(workdir, out, *, tflite=None, step=None) -> None:
  """tnjax.export's work: the artefact at `out`, its input contract beside it (OUT.json)."""
  from tnjax.compression import load, serving  # pylint: disable=g-import-not-at-top
  from tnjax.data import eval_pipeline  # pylint: disable=g-import-not-at-top

  model, config = load(workdir, step=step)
  _say_if_unfinished(workdir, step)
  pipeline, arrays = serving.run_input_pipeline(workdir, config)
  artefact = serving.export_model(model, pipeline, arrays)
  flatbuffer = serving.export_tflite(model, pipeline, arrays) if tflite is not None else None
  out = fileio.workdir_path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_bytes(artefact)
  contract = fileio.workdir_path(str(out) + ".json")
  fileio.write_json(contract, {**pipeline, "output": "logits (batch, classes)"})
  print(f"Wrote {out} ({len(artefact):,} bytes) and its input contract {contract.name}.")
  print(f"It takes {eval_pipeline.describe(pipeline)}.")
  if flatbuffer is not None:
    tflite = fileio.workdir_path(tflite)
    tflite.parent.mkdir(parents=True, exist_ok=True)
    tflite.write_bytes(flatbuffer)
    print(f"Wrote {tflite} ({len(flatbuffer):,} bytes), the same input.")
