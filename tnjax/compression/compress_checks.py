"""What can refuse a compress command, checked before anything is written: the command's
flags and workdir, a rerun's source and plan (by what the plan says), and a rerun's config."""

from __future__ import annotations

import json

from tnjax import errors, fileio
from tnjax.training import run_files


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


def check_command(source_dir, workdir, finetune_epochs, previous, search_counts: dict) -> None:
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
  source = fileio.workdir_path(source_dir)
  if source == workdir:
    raise errors.UserError(
      f"--from and --workdir are both {workdir}; give the compressed run a new --workdir."
    )
  if source in workdir.parents:
    raise errors.UserError(
      f"--workdir {workdir} lies inside the source run {source}; give the compressed run "
      "a directory of its own."
    )
  # A search killed before its report leaves only WORKDIR/search: the same command resumes it.
  if previous is None and workdir.exists() and any(p.name != "search" for p in workdir.iterdir()):
    raise errors.UserError(
      f"--workdir {workdir} exists and is not empty; give a new directory for the "
      "compressed run (or the workdir of this same compression to resume it)."
    )
  if previous is not None and previous["source"] != str(source):
    raise errors.UserError(
      f"{workdir} holds the compression of {previous['source']}; use a new --workdir for "
      "another source."
    )


def plan_record(plan: dict, budget) -> str:
  """The plan as the report keeps it: what the plan file returned, not its path (the same
  file named another way is the same plan; an edited file is another)."""
  return json.dumps({"layers": plan, "budget": budget}, sort_keys=True, default=list)


def check_same_plan(previous, plan_path: str, plan: dict, budget, workdir) -> None:
  """A rerun into a finished compression must give the plan it was made by."""
  if previous is None:
    return
  recorded = previous.get("plan_record")
  same = (
    recorded == plan_record(plan, budget)
    if recorded is not None
    else previous["plan"] == plan_path  # a report written before plans were recorded
  )
  if not same:
    raise errors.UserError(
      f"{workdir} holds the compression by another plan (that of {previous['plan']} when it "
      f"ran: {json.loads(recorded) if recorded else 'not recorded'}); use a new --workdir "
      "for another plan."
    )


def check_rerun(
  workdir, config, finetune_epochs: int, allow_config_change: bool, override_pair
) -> None:
  """A rerun of a compression continues its fine-tune only under the config it started with.

  `override_pair`: (the first command's --config overrides as its report recorded them, or
  None for a report from before they were; this command's)."""
  from tnjax.training import checkpoint, resume_check  # pylint: disable=g-import-not-at-top

  saved = fileio.read_json(workdir / run_files.CONFIG)
  if saved is None:
    return
  blocking = [
    c for c in resume_check.blocking_changes(saved, config.to_dict()) if c[0] != "pretrained.path"
  ]
  model_changes = [c for c in blocking if c[0].startswith("model.")]
  if model_changes:  # the converted weights are this model's: no flag can change it
    raise errors.UserError(
      f"{workdir} holds a model converted by its plan; --config.model overrides would change "
      f"it ({resume_check.format_changes(model_changes)}). Use a new --workdir."
    )
  if not blocking or not checkpoint.saved_steps(workdir / run_files.CHECKPOINTS):
    return  # nothing trained yet: the fine-tune starts under the new settings
  # A change neither command's flags made came from the source run (continued since).
  first, now = override_pair
  from_source = (
    []
    if first is None
    else [c for c in blocking if c[0] not in {**first, **now} and c[0] != "num_epochs"]
  )
  if from_source and not allow_config_change:
    raise errors.UserError(
      f"{workdir} was fine-tuned from its source's config as it was then; the source run has "
      f"changed since ({resume_check.format_changes(from_source)}). Compress it again into a "
      "new --workdir, or pass --allow_config_change to go on under the source's new settings."
    )
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
