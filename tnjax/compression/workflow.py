"""The compress / evaluate workflow the programs run: a trained run in, a compressed run
(an ordinary, resumable one), its report, evaluations and merged dense copies out."""

from __future__ import annotations


import numpy as np

from tnjax import config_lib, errors, fileio
from tnjax.training import schema as config_schema
from tnjax.training import run_files

REPORT, INIT_WEIGHTS = run_files.COMPRESS_REPORT, run_files.COMPRESSED_INIT


PLAN_KEYS = ("layers", "budget")


def read_plan(plan_path: str) -> tuple[dict, dict | None]:
  """(layers plan, budget or None) from a plan file's get_plan(); what the file returns is
  checked here, each entry's spec in compression.plan (resolve_plan)."""
  from tnjax.compression import sizing  # pylint: disable=g-import-not-at-top

  module, arg = config_lib.load_module(plan_path, entry="get_plan")
  path = plan_path.partition(":")[0]
  with errors.input_errors_are_user_errors():  # (a :arg get_plan does not take: one line too)
    plan = config_lib.call_user_function(path, module.get_plan, *((arg,) if arg else ()))
  if hasattr(plan, "to_dict"):
    plan = plan.to_dict()
  if not isinstance(plan, dict) or not plan:
    raise errors.UserError(
      f"plan file {path}: get_plan() returned {type(plan).__name__} {plan!r:.60}; it must "
      "return a non-empty dict, {layer name or glob: spec} or {'layers': {...}, 'budget': {...}}."
    )
  if "layers" not in plan:
    return plan, None
  unknown = sorted(set(plan) - set(PLAN_KEYS))
  if unknown:
    raise errors.UserError(
      f"plan file {path}: a plan with 'layers' takes only {PLAN_KEYS}; remove {unknown}."
    )
  layers = plan["layers"].to_dict() if hasattr(plan["layers"], "to_dict") else plan["layers"]
  if not isinstance(layers, dict):
    raise errors.UserError(f"plan file {path}: 'layers' must be a dict, got {layers!r:.60}.")
  budget = plan.get("budget")
  if budget is not None:
    sizing.check_budget(budget)
  return dict(layers), budget


def compressed_config(source_config, rows, overrides: dict, epochs: int, init_path):
  """The fine-tune's config: the source's, with the compressed layers' specs, the converted
  weights as its pretrained start, `epochs` epochs and the command line's overrides."""
  config = config_lib.apply_overrides(source_config, {})
  with config.unlocked():
    for row in rows:
      if "/" in row["name"]:
        raise errors.UserError(
          f"{row['name']}: only a model's own layers (config.model.layers names) can be "
          "compressed into a run; plan the top-level layer names."
        )
      if "layers" not in config.model or config.model.layers is None:
        config.model.layers = {}
      config.model.layers[row["name"]] = row["spec"]
    config.num_epochs = max(epochs, 1)  # 0: nothing trains (the config is still a valid one)
    config.pretrained.path = str(init_path)
    config.pretrained.rename = {}
  return config_lib.apply_overrides(config, overrides)


def _markdown(report: dict) -> str:
  lines = [
    f"# Compressed from {report['source']}",
    "",
    f"Plan: `{report['plan']}`" + (f", budget {report['budget']}" if report["budget"] else ""),
    "",
    "| layer | format | shape | weights before | after | compression | rel. error | path |",
    "|---|---|---|---:|---:|---:|---:|---|",
  ]
  for r in report["layers"]:
    lines.append(
      f"| {r['name']} | {r['format']} | {r['shape']} | {r['weights_before']:,} | "
      f"{r['weights_after']:,} | {r['compression']:,.1f}x | {r['relative_error']:.4f} | "
      f"{r.get('path', '-')} |"
    )
  if "source_accuracy" not in report:
    return "\n".join(lines) + "\n"
  lines += ["", "| model | parameters | test accuracy |", "|---|---:|---:|"]
  for key, label in (("source", "source"), ("converted", "converted"), ("finetuned", "fine-tuned")):
    if key + "_accuracy" in report:
      lines.append(
        f"| {label} | {report[key + '_params']:,} | {100 * report[key + '_accuracy']:.2f}% |"
      )
  return "\n".join(lines) + "\n"


def _check_new_run_place(workdir) -> None:
  """A --workdir for a new run: not a file, not under one (created only after every check)."""
  if fileio.is_remote(workdir):
    return
  for path in (workdir, *workdir.parents):
    if path.exists():
      if not path.is_dir():
        where = "is a file" if path == workdir else f"lies under the file {path}"
        raise errors.UserError(f"--workdir {workdir} {where}; give a directory path.")
      return


def _check_compress_command(
  source_dir, plan_path, workdir, finetune_epochs, previous, search_counts: dict
) -> None:
  """Everything about the command itself that can refuse it, before any file is read;
  `search_counts` are the measured-budget flags (each a whole number >= 1)."""
  if not isinstance(finetune_epochs, int) or finetune_epochs < 0:
    raise errors.UserError(
      f"--finetune_epochs={finetune_epochs} must be an integer >= 0 (0: convert only)."
    )
  for flag, value in search_counts.items():
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise errors.UserError(f"--{flag}={value} must be an integer >= 1.")
  _check_new_run_place(workdir)
  if fileio.workdir_path(source_dir) == workdir:
    raise errors.UserError(
      f"--from and --workdir are both {workdir}; give the compressed run a new --workdir."
    )
  # A search killed before its report leaves only WORKDIR/search: the same command resumes it.
  if previous is None and workdir.exists() and any(p.name != "search" for p in workdir.iterdir()):
    raise errors.UserError(
      f"--workdir {workdir} exists and is not empty; give a new directory for the "
      "compressed run (or the workdir of this same compression to resume it)."
    )
  if previous is not None and (previous["source"], previous["plan"]) != (
    str(fileio.workdir_path(source_dir)),
    plan_path,
  ):
    raise errors.UserError(
      f"{workdir} holds the compression of {previous['source']} by {previous['plan']}; "
      "use a new --workdir for another source or plan."
    )


def _check_rerun(workdir, config, finetune_epochs: int, allow_config_change: bool) -> None:
  """A rerun of a compression continues its fine-tune only under the config it started with."""
  from tnjax.training import checkpoint, resume_check  # pylint: disable=g-import-not-at-top

  saved = fileio.read_json(workdir / run_files.CONFIG)
  if saved is None:
    return
  blocking = [
    c
    for c in resume_check.config_changes(saved, config.to_dict())
    if not config_schema.is_harmless(c[0]) and c[0] != "pretrained.path"
  ]
  model_changes = [c for c in blocking if c[0].startswith("model.")]
  if model_changes:  # the converted weights are this model's: no flag can change it
    raise errors.UserError(
      f"{workdir} holds a model converted by its plan; --config.model overrides would change "
      f"it ({resume_check.format_changes(model_changes)}). Use a new --workdir."
    )
  if not blocking or not checkpoint.saved_steps(workdir / run_files.CHECKPOINTS):
    return  # nothing trained yet: the fine-tune starts under the new settings
  if not allow_config_change:
    raise errors.UserError(
      f"{workdir} was fine-tuned under another config: {resume_check.format_changes(blocking)}. "
      "Rerun with the first command's --finetune_epochs and overrides, use a new --workdir, "
      "or pass --allow_config_change to continue under the new settings."
    )
  if finetune_epochs == 0:
    raise errors.UserError(
      f"{workdir} is already fine-tuned; --finetune_epochs 0 would leave a config that no "
      "longer describes its checkpoints. Evaluate it with python -m tnjax.evaluate instead."
    )


def compress_run(
  source_dir,
  plan_path,
  workdir,
  *,
  finetune_epochs=0,
  overrides=None,
  allow_config_change: bool = False,
  search_finetune_epochs: int = 1,
  validation_examples: int = 5000,
) -> dict:
  """The program's work (see the module docstring); returns the report dict.

  Every check that can refuse the command runs before the first write: a refused
  command leaves the workdir as it was.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from tnjax import data as data_lib  # pylint: disable=g-import-not-at-top
  from tnjax.compression import compress_model, load, serving  # pylint: disable=g-import-not-at-top
  from tnjax.compression import run_search, sizing  # pylint: disable=g-import-not-at-top
  from tnjax.nn import total_params  # pylint: disable=g-import-not-at-top
  from tnjax.training import evaluation, trainer, validate  # pylint: disable=g-import-not-at-top

  workdir = fileio.workdir_path(workdir)
  previous = fileio.read_json(workdir / REPORT) if workdir.is_dir() else None
  search_counts = {
    "validation_examples": validation_examples,
    "search_finetune_epochs": search_finetune_epochs,
  }
  _check_compress_command(source_dir, plan_path, workdir, finetune_epochs, previous, search_counts)
  plan, budget = read_plan(plan_path)
  model, source_config = load(source_dir)
  if previous is not None:
    report = previous
    config = compressed_config(
      source_config, report["layers"], overrides or {}, finetune_epochs, workdir / INIT_WEIGHTS
    )
    with errors.input_errors_are_user_errors():
      validate.validate_config(config)
    _check_rerun(workdir, config, finetune_epochs, allow_config_change)
  else:
    # An unknown field is refused before the fit (which may take minutes); overrides of
    # the planned layers' specs can only be checked once the fit has written them.
    config_lib.apply_overrides(
      source_config,
      {k: v for k, v in (overrides or {}).items() if not k.startswith("model.layers.")},
    )
    image_shape = data_lib.nominal_shape(source_config.data)[0]
    shape = (source_config.batch_size,) + tuple(image_shape)
    validation = None
    if budget is not None and sizing.needs_search(budget):
      validation = run_search.validation_for_run(
        source_dir,
        source_config,
        workdir,
        examples=validation_examples,
        finetune_epochs=search_finetune_epochs,
        overrides=overrides,
      )
    compressed, rows = compress_model(
      model,
      plan,
      budget=budget,
      validation=validation,
      workdir=workdir / run_search.SEARCH_DIR,
      example_input=jax.ShapeDtypeStruct(shape, jnp.float32),
    )
    config = compressed_config(
      source_config, rows, overrides or {}, finetune_epochs, workdir / INIT_WEIGHTS
    )
    with errors.input_errors_are_user_errors():
      validate.validate_config(config)
    pipeline, pipeline_arrays = serving.run_input_pipeline(source_dir, source_config)
    report = {
      "source": str(fileio.workdir_path(source_dir)),
      "plan": plan_path,
      "budget": budget,
      "layers": rows,
      "source_params": total_params(model),
      "converted_params": total_params(compressed),
    }
    print(_markdown(report), flush=True)
    report["source_accuracy"] = evaluation.evaluate_model(model, source_config)["test_accuracy"]
    report["converted_accuracy"] = evaluation.evaluate_model(compressed, source_config)[
      "test_accuracy"
    ]
    print(
      f"Test accuracy: source {100 * report['source_accuracy']:.2f}%, right after "
      f"conversion {100 * report['converted_accuracy']:.2f}%.",
      flush=True,
    )
    # Every check has passed: the first write.
    workdir.mkdir(parents=True, exist_ok=True)
    arrays = {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in _flat(compressed)}
    fileio.write_npz(workdir / INIT_WEIGHTS, arrays)
    serving.write_input_pipeline(workdir, pipeline, pipeline_arrays)
    fileio.write_json(workdir / run_files.CONFIG, config.to_dict())  # tnjax.load reads it
    fileio.write_json(workdir / REPORT, report)
    fileio.write_text(workdir / "compress.md", _markdown(report))
  if finetune_epochs > 0:
    # An ordinary run: resumable, locked; it checks its own resume before writing.
    result = trainer.train(config, workdir, allow_config_change=allow_config_change).result
    report["finetuned_accuracy"] = result["test_accuracy"]
    report["finetuned_params"] = result["num_params"]
    fileio.write_json(workdir / REPORT, report)
    fileio.write_text(workdir / "compress.md", _markdown(report))
  return report


def _flat(model):
  from flax import nnx  # pylint: disable=g-import-not-at-top

  return nnx.to_flat_state(nnx.state(model, nnx.Not(nnx.RngState)))


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
  config = config_lib.apply_overrides(config, overrides)
  with errors.input_errors_are_user_errors():
    validate.validate_config(config)
  metrics = evaluation.evaluate_model(model, config)
  if merge_path is not None:
    fileio.write_npz(merge_path, merged_arrays(model))
    metrics["merged"] = merge
  return metrics


def export_run(workdir, out, *, tflite=None, step=None) -> None:
  """tnjax.export's work: the artefact at `out`, its input contract beside it (OUT.json)."""
  from tnjax.compression import load, serving  # pylint: disable=g-import-not-at-top
  from tnjax.data import eval_pipeline  # pylint: disable=g-import-not-at-top

  model, config = load(workdir, step=step)
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
