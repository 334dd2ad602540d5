"""The compress / evaluate workflow the programs run: a trained run in, a compressed run
(an ordinary, resumable one), its report, evaluations and merged dense copies out."""

from __future__ import annotations

import io

import numpy as np

from tnjax import config_lib, errors, fileio
from tnjax.training import run_files

REPORT, INIT_WEIGHTS = run_files.COMPRESS_REPORT, run_files.COMPRESSED_INIT


def read_plan(plan_path: str) -> tuple[dict, dict | None]:
  """(layers plan, budget or None) from a plan file's get_plan()."""
  module, arg = config_lib.load_module(plan_path, entry="get_plan")
  with errors.input_errors_are_user_errors():
    plan = module.get_plan(arg) if arg else module.get_plan()
  plan = plan.to_dict() if hasattr(plan, "to_dict") else dict(plan)
  if "layers" in plan:
    return dict(plan["layers"]), plan.get("budget")
  return plan, None


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


def _write_npz(path, arrays: dict) -> None:
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  path.write_bytes(buffer.getvalue())


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


def compress_run(source_dir, plan_path, workdir, *, finetune_epochs=0, overrides=None) -> dict:
  """The program's work (see the module docstring); returns the report dict."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from tnjax import data as data_lib  # pylint: disable=g-import-not-at-top
  from tnjax.compression import compress_model, load  # pylint: disable=g-import-not-at-top
  from tnjax.nn import total_params  # pylint: disable=g-import-not-at-top
  from tnjax.training import evaluation, trainer  # pylint: disable=g-import-not-at-top

  workdir = fileio.workdir_path(workdir)
  previous = fileio.read_json(workdir / REPORT)
  if previous is None and workdir.exists() and any(workdir.iterdir()):
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
  plan, budget = read_plan(plan_path)
  model, source_config = load(source_dir)
  if previous is None:
    image_shape = data_lib.nominal_shape(source_config.data)[0]
    shape = (source_config.batch_size,) + tuple(image_shape)
    compressed, rows = compress_model(
      model, plan, budget=budget, example_input=jax.ShapeDtypeStruct(shape, jnp.float32)
    )
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
    workdir.mkdir(parents=True, exist_ok=True)
    arrays = {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in _flat(compressed)}
    _write_npz(workdir / INIT_WEIGHTS, arrays)
    fileio.write_json(workdir / REPORT, report)
    fileio.write_text(workdir / "compress.md", _markdown(report))
  else:
    report = previous
  config = compressed_config(
    source_config, report["layers"], overrides or {}, finetune_epochs, workdir / INIT_WEIGHTS
  )
  fileio.write_json(workdir / run_files.CONFIG, config.to_dict())  # tnjax.load reads it
  if finetune_epochs > 0:
    result = trainer.train(config, workdir).result  # an ordinary run: resumable, locked
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


def evaluate_run(workdir, *, step=None, merge: str = "", overrides=None) -> dict:
  from tnjax.compression import load  # pylint: disable=g-import-not-at-top
  from tnjax.training import evaluation  # pylint: disable=g-import-not-at-top

  model, config = load(workdir, step=step)
  config = config_lib.apply_overrides(config, overrides or {})
  metrics = evaluation.evaluate_model(model, config)
  if merge:
    if not merge.endswith(".npz"):
      raise errors.UserError(f"--merge {merge!r}: give a .npz path.")
    buffer = io.BytesIO()
    np.savez(buffer, **merged_arrays(model))
    fileio.workdir_path(merge).parent.mkdir(parents=True, exist_ok=True)
    fileio.workdir_path(merge).write_bytes(buffer.getvalue())
    metrics["merged"] = merge
  return metrics
