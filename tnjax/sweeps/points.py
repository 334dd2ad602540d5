"""A sweep's points: the config's sweep() overrides, their readable names, their configs, and
the check that a point directory is resumed only under the settings it was made with."""

from __future__ import annotations

import inspect
import re

import ml_collections

from tnjax import config_lib, errors, fileio
from tnjax.training import run_files


def sweep_points(module, common: dict | None = None, arg: str | None = None) -> list[dict]:
  """The override dicts of the config module's sweep(), after the `common` ones, checked.

  A sweep(arg) that takes a parameter gets the config's argument string (one config file
  can hold several studies, chosen by an argument)."""
  if not callable(getattr(module, "sweep", None)):
    raise errors.UserError(
      f"{module.__file__} defines no sweep(); add a function sweep() returning a list "
      "of override dicts to run it as a sweep."
    )
  parameters = inspect.signature(module.sweep).parameters
  required = [p for p in parameters.values() if p.default is inspect.Parameter.empty]
  if len(required) > 1:
    raise errors.UserError(
      f"sweep() of {module.__file__} needs {len(required)} arguments; it takes none, or "
      "one: the config's argument string."
    )
  args = (arg,) if parameters else ()
  points = config_lib.call_user_function(module.__file__, module.sweep, *args)
  if (
    not isinstance(points, (list, tuple))
    or not points
    or not all(isinstance(p, dict) and all(isinstance(k, str) for k in p) for p in points)
  ):
    raise errors.UserError(
      f"sweep() of {module.__file__} must return a non-empty list of dicts mapping dotted "
      f"config fields (strings) to values; got {str(points)[:80]}."
    )
  return [{**(common or {}), **p} for p in points]


def check_seeds_are_free(points: list[dict], indices, seeds) -> None:
  """--seeds beside a chosen point that sets seed itself is refused: the point's own value
  would win, and every "seed" would train (or list) the same run."""
  seeded = [i for i in indices if seeds and "seed" in points[i]]
  if seeded:
    raise errors.UserError(
      f"sweep point {point_name(seeded[0], points[seeded[0]])} sets "
      f"seed={points[seeded[0]]['seed']}, so --seeds would train it with that seed every "
      "time; drop --seeds, or the seed from the config's sweep()."
    )


def typed_overrides(config, overrides: dict) -> dict:
  """The command-line overrides as the values they set (checked against the config)."""
  config = config_lib.apply_overrides(config, overrides)
  typed = {}
  for key in overrides:
    value = config
    for name in key.split("."):
      value = value[name]
    typed[key] = value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
  return typed


def point_config(module, arg, index: int, overrides: dict) -> ml_collections.ConfigDict:
  """Point `index`'s config: get_config(arg), the command-line overrides, then the point's."""
  base = config_lib.config_of(module, arg)
  common = typed_overrides(base, overrides)
  config = config_lib.apply_overrides(base, common)
  return config_lib.apply_overrides(config, sweep_points(module, arg=arg)[index], new_leaves=True)


def _short(value) -> str:
  if isinstance(value, (list, tuple)):
    return "x".join(_short(v) for v in value)
  if (
    isinstance(value, dict)
    and value
    and all(isinstance(v, dict) and "kind" in v for v in value.values())
  ):
    # A dict of layer specs (model.layers): 'conv2-tucker2x8_fc1-tt5'.
    return "_".join(f"{name}-{spec['kind']}{_spec_sizes(spec)}" for name, spec in value.items())
  if isinstance(value, dict):
    return "-".join(_short(v) for k, v in sorted(value.items()) if k != "kind") or "default"
  return str(value)


def _spec_sizes(spec: dict) -> str:
  sizes = [
    str(v)
    for k, v in spec.items()
    if k not in ("kind", "num_sketches", "order", "seed")
    and isinstance(v, int)
    and not isinstance(v, bool)
  ]
  return "x".join(sizes)


def point_name(index: int, overrides: dict) -> str:
  """A readable, filesystem-safe sub-workdir name: '03_ranks=4_in_shape=4x8x8x4'."""
  parts = []
  for key, value in overrides.items():
    leaf = key.rsplit(".", 1)[-1]
    if isinstance(value, dict) and "kind" in value:
      parts.append(f"{leaf}={value['kind']}-{_short(value)}")
    else:
      parts.append(f"{leaf}={_short(value)}")
  name = re.sub(r"[^A-Za-z0-9=._-]+", "-", "_".join(parts))[:80] or "base"
  return f"{index:02d}_{name}"


def check_same_point(point_dir, config) -> None:
  """Refuses to resume a point directory that trained under other settings: its saved
  config against the one this command builds for it (however the --config was written)."""
  from tnjax.training import resume_check  # pylint: disable=g-import-not-at-top

  point_dir = fileio.workdir_path(point_dir)
  saved = fileio.read_json(point_dir / run_files.CONFIG)
  if saved is None or run_files.status(point_dir) in ("new", "failed"):  # nothing trained yet
    return
  changes = resume_check.blocking_changes(saved, config.to_dict())
  if changes:
    raise errors.UserError(
      f"{point_dir} trained under other settings ({resume_check.format_changes(changes)}); "
      "use a new --workdir for changed settings."
    )
