"""The compress / evaluate workflow the programs run: a trained run in, a compressed run
(an ordinary, resumable one), its report, evaluations and merged dense copies out."""

from __future__ import annotations

import numpy as np

from tnjax import config_lib, errors, fileio
from tnjax.compression import compress_checks
from tnjax.training import run_files

REPORT, INIT_WEIGHTS = run_files.COMPRESS_REPORT, run_files.COMPRESSED_INIT


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
  from tnjax.compression import load  # pylint: disable=g-import-not-at-top
  from tnjax.compression.plan_file import read_plan  # pylint: disable=g-import-not-at-top
  from tnjax.training import trainer, validate  # pylint: disable=g-import-not-at-top

  workdir, overrides = fileio.workdir_path(workdir), overrides or {}
  previous = fileio.read_json(workdir / REPORT) if workdir.is_dir() else None
  search_counts = {
    "validation_examples": validation_examples,
    "search_finetune_epochs": search_finetune_epochs,
  }
  compress_checks.check_command(source_dir, workdir, finetune_epochs, previous, search_counts)
  if "num_epochs" in overrides:  # the fine-tune's epochs: one flag says them, not two
    raise errors.UserError(
      f"--config.num_epochs={overrides['num_epochs']}: a compression's fine-tune epochs are "
      f"--finetune_epochs N (now {finetune_epochs}); give them there only."
    )
  plan, budget = read_plan(plan_path)
  compress_checks.check_same_plan(previous, plan_path, plan, budget, workdir)
  model, source_config = load(source_dir)
  if previous is not None:
    report = previous
    config = compressed_config(
      source_config, report["layers"], overrides, finetune_epochs, workdir / INIT_WEIGHTS
    )
    with errors.input_errors_are_user_errors():
      validate.validate_config(config)
    compress_checks.check_rerun(
      workdir, config, finetune_epochs, allow_config_change, (report.get("overrides"), overrides)
    )
    print(
      f"{workdir} already holds this compression (its report: compress.md); nothing to "
      "convert" + ("; the fine-tune goes on." if finetune_epochs > 0 else "."),
      flush=True,
    )
  else:
    config, report = _compress_and_write(
      source_dir,
      plan_path,
      (plan, budget),
      (model, source_config),
      workdir,
      overrides,
      finetune_epochs,
      search_counts,
    )
  if finetune_epochs > 0:
    # An ordinary run: resumable, locked; it checks its own resume before writing.
    result = trainer.train(config, workdir, allow_config_change=allow_config_change).result
    report["finetuned_accuracy"] = result["test_accuracy"]
    report["finetuned_params"] = result["num_params"]
    fileio.write_json(workdir / REPORT, report)
    fileio.write_text(workdir / "compress.md", _markdown(report))
  return report


def _compress_and_write(
  source_dir, plan_path, plan_and_budget, source, workdir, overrides, epochs, search_counts
):
  """A first compression: (fine-tune config, report), the converted run written only after
  every check (the fine-tune config's included) has passed."""
  from tnjax.compression import serving  # pylint: disable=g-import-not-at-top
  from tnjax.nn import total_params  # pylint: disable=g-import-not-at-top
  from tnjax.training import evaluation, validate  # pylint: disable=g-import-not-at-top

  (plan, budget), (model, source_config) = plan_and_budget, source
  # An unknown field is refused before the fit (which may take minutes), and the source is
  # measured under the data settings its fine-tune gets (a TFDS-trained run compressed
  # where only IDX files are: --config.data.source=idx); overrides of the planned layers'
  # specs can only be checked once the fit has written them.
  source_config = config_lib.apply_overrides(
    source_config, {k: v for k, v in overrides.items() if not k.startswith("model.layers.")}
  )
  compressed, rows = _compress_source(
    source_dir, (plan, budget), (model, source_config), workdir, overrides, search_counts
  )
  config = compressed_config(source_config, rows, overrides, epochs, workdir / INIT_WEIGHTS)
  with errors.input_errors_are_user_errors():
    validate.validate_config(config)
  pipeline, pipeline_arrays = serving.run_input_pipeline(source_dir, source_config)
  report = {
    "source": str(fileio.workdir_path(source_dir)),
    "plan": plan_path,
    "plan_record": compress_checks.plan_record(plan, budget),
    "overrides": dict(overrides),  # a rerun tells its own changes from its source's
    "budget": budget,
    "layers": rows,
    "source_params": total_params(model),
    "converted_params": total_params(compressed),
  }
  print(_markdown(report), flush=True)
  for key, which in (("source_accuracy", model), ("converted_accuracy", compressed)):
    report[key] = evaluation.evaluate_model(which, source_config, pipeline_arrays)["test_accuracy"]
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
  return config, report


def _compress_source(source_dir, plan_and_budget, source, workdir, overrides, search_counts):
  """(compressed model, report rows): the source model compressed by the plan; a budget met
  by measuring first holds out its validation split (run_search)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from tnjax import data as data_lib  # pylint: disable=g-import-not-at-top
  from tnjax.compression import budget as budget_lib  # pylint: disable=g-import-not-at-top
  from tnjax.compression import compress_model, run_search  # pylint: disable=g-import-not-at-top

  (plan, budget), (model, source_config) = plan_and_budget, source
  image_shape = data_lib.nominal_shape(source_config.data)[0]
  validation = None
  if budget is not None and budget_lib.needs_search(budget):
    validation = run_search.validation_for_run(
      source_dir,
      source_config,
      workdir,
      examples=search_counts["validation_examples"],
      finetune_epochs=search_counts["search_finetune_epochs"],
      overrides=overrides,
    )
  example = (source_config.batch_size,) + tuple(image_shape)
  return compress_model(
    model,
    plan,
    budget=budget,
    validation=validation,
    workdir=workdir / run_search.SEARCH_DIR,
    example_input=jax.ShapeDtypeStruct(example, jnp.float32),
  )


def _flat(model):
  from flax import nnx  # pylint: disable=g-import-not-at-top

  return nnx.to_flat_state(nnx.state(model, nnx.Not(nnx.RngState)))
