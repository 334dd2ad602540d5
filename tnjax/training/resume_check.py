"""Checked resume: a workdir continues only under the config its checkpoints were made with.

Fields that change what is trained (model, optimizer, schedule, data, seed,
epochs) must match the config saved in the checkpoint; fields that only change
how the run is watched or where it runs (logging, progress bar, checkpoint
interval, eval batch size, W&B, mesh, the data's location) may change freely.
"""

from __future__ import annotations

import dataclasses
import json
import time

from tnjax.training import schema as config_schema
from tnjax import errors
from tnjax import fileio
from tnjax.training import run_files

HISTORY = run_files.HISTORY


def _flatten(tree, prefix: str = "") -> dict:
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(_flatten(value, f"{prefix}{key}."))
    return out if out or not prefix else {prefix[:-1]: {}}
  return {prefix[:-1]: tree}


def _canonical(config_dict: dict) -> dict:
  """JSON round trip: tuples become lists, as in the saved copy."""
  return json.loads(json.dumps(config_dict, default=str))


def _with_spec_defaults(tree):
  """Every layer spec (a dict with a registered 'kind') with its unset fields at their
  defaults: {'kind': 'tt', 'ranks': 8} and the full spec a compressed run saves are one
  spec, not a list of '<absent>' differences."""
  if not isinstance(tree, dict):
    return tree
  tree = {key: _with_spec_defaults(value) for key, value in tree.items()}
  if isinstance(tree.get("kind"), str):
    from tnjax.nn import registry  # pylint: disable=g-import-not-at-top

    try:
      spec_type = registry.spec_class(tree["kind"])
    except ValueError:  # not a layer spec's kind (or a misspelt one: validation says so)
      return tree
    for field in dataclasses.fields(spec_type):
      if field.name not in tree and field.default is not dataclasses.MISSING:
        tree[field.name] = _canonical(field.default)
  return tree


def comparable_fields(config_dict: dict) -> dict:
  """The config as dotted fields with the saved copy's JSON types, its layer specs with
  their defaults, and the fields added since older runs were made at the defaults that
  reproduce those runs."""
  fields = _flatten(_with_spec_defaults(_canonical(config_dict)))
  for key, value in config_schema.ADDED_WITH_DEFAULT.items():
    fields.setdefault(key, value)
  return fields


def config_changes(saved: dict, current: dict) -> list[tuple[str, object, object]]:
  """(dotted key, saved value, current value) for every field that differs."""
  old, new = comparable_fields(saved), comparable_fields(current)
  missing = object()
  changes = [
    (key, old.get(key, "<absent>"), new.get(key, "<absent>"))
    for key in sorted(old.keys() | new.keys())
    if old.get(key, missing) != new.get(key, missing)
  ]
  # A layer whose kind changed is one change: its other fields belong to another format.
  swapped = [key[: -len("kind")] for key, _, _ in changes if key.endswith(".kind")]
  return [
    c for c in changes if c[0].endswith(".kind") or not any(c[0].startswith(s) for s in swapped)
  ]


def blocking_changes(saved: dict, current: dict) -> list[tuple[str, object, object]]:
  """The changes that alter what is trained (config_schema.is_harmless ones left out)."""
  return [c for c in config_changes(saved, current) if not config_schema.is_harmless(c[0])]


def format_changes(changes, limit: int = 6) -> str:
  shown = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changes[:limit])
  return shown + (f"; and {len(changes) - limit} more" if len(changes) > limit else "")


def check_resume(
  workdir, step: int, saved: dict, current: dict, *, allow_change: bool, record: bool
) -> list:
  """Refuses a resume whose config changed what is trained; records accepted changes."""
  changes = config_changes(saved, current)
  allowed_before = _allowed_at(workdir, step)
  blocking = [
    c
    for c in changes
    if not config_schema.is_harmless(c[0])
    and (c[0], json.dumps(c[2], default=str)) not in allowed_before
  ]
  if blocking and not allow_change:
    raise errors.UserError(
      f"{workdir} was trained to step {step} with another config: {format_changes(blocking)}. "
      "Use a new --workdir, or pass --allow_config_change to continue under the new settings "
      f"(the change is recorded in {HISTORY})."
    )
  if changes and record:
    path = fileio.workdir_path(workdir) / HISTORY
    history = fileio.read_jsonl(path)
    history.append(
      {
        "step": step,
        "time": time.time(),
        "allowed": bool(blocking),
        "changes": [{"key": k, "old": o, "new": n} for k, o, n in changes],
      }
    )
    fileio.write_text(path, "".join(json.dumps(h, default=str) + "\n" for h in history))
  return changes


def _allowed_at(workdir, step: int) -> set:
  """(key, new value) of the changes an earlier --allow_config_change accepted when the run
  resumed from `step`: falling back to that checkpoint again (a newer one unreadable)
  needs no second permission."""
  history = fileio.read_jsonl(fileio.workdir_path(workdir) / HISTORY)
  return {
    (c["key"], json.dumps(c["new"], default=str))
    for h in history
    if h.get("allowed") and h.get("step") == step
    for c in h.get("changes", [])
  }
