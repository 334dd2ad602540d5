"""Configs: the one loader (config files by path or packaged name, with overrides).

Configs are data: every experiment is `get_config(arg)` in configs/, built from
`training.schema.base_config()` plus a few fields. `--config configs/x.py:runlocal,rank=4`
passes 'runlocal,rank=4' as `arg` (parsed by config_args.parse_arg); `--config.num_epochs=3`
overrides a field. Every program (train, sweep, compress, evaluate) loads configs through
`load_config`, so a config file and its overrides mean the same thing everywhere.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
import difflib
import importlib.resources
import importlib.util
import pathlib
import re
import traceback

import ml_collections
import numpy as np

from tnjax import config_args, errors

# Config files written against config_lib reach the schema's helpers through it (e.g.
# `config_lib.base_config()`); loaded on first use, so loading configs never imports data/.
_MOVED = {
  **dict.fromkeys(("parse_arg", "parse_int_list"), "tnjax.config_args"),
  **dict.fromkeys(
    (
      "FASHION_MNIST_IDX_DIR",
      "apply_offline_source",
      "base_config",
      "shrink_for_smoke_run",
      "HARMLESS_FIELDS",
      "ADDED_WITH_DEFAULT",
      "RENAMED_MODEL_FIELDS",
      "WANDB_MODES",
      "is_harmless",
    ),
    "tnjax.training.schema",
  ),
}


def __getattr__(name: str):
  if name in _MOVED:
    return getattr(importlib.import_module(_MOVED[name]), name)
  raise AttributeError(f"module 'tnjax.config_lib' has no attribute {name!r}")


# --- The loader ---


def packaged_config_names() -> list[str]:
  """The configs that ship inside the tnjax package (tnjax/configs/*.py with a get_config)."""
  folder = importlib.resources.files("tnjax.configs")
  return sorted(
    f.name[: -len(".py")]
    for f in folder.iterdir()
    if f.name.endswith(".py") and "def get_config(" in f.read_text(encoding="utf-8")
  )


def packaged_config_file(name: str) -> str | None:
  """The file of a packaged config named 'tt_mnist' or 'tnjax.configs.tt_mnist', so an
  installed wheel runs `--config tt_mnist` from any directory; None for anything else."""
  name = name.removeprefix("tnjax.configs.")
  if not re.fullmatch(r"[A-Za-z_]\w*", name):
    return None
  file = importlib.resources.files("tnjax.configs") / f"{name}.py"
  return str(file) if file.is_file() else None


def load_module(config_path: str, entry: str = "get_config"):
  """(module, arg) for 'path/to/x.py[:arg]' defining `entry` (a config's get_config, a
  compression plan's get_plan); one-line UserErrors for what a user can fix."""
  # 'gs://b/x.py:arg': the URL's colon is not the argument's (an argument may hold a URL).
  url = re.match(r"([a-z][a-z0-9+.-]*)://", config_path)
  scheme = url.group(1) if url else ""
  path, _, arg = config_path[url.end() if url else 0 :].partition(":")
  kind = "plan file" if entry == "get_plan" else "config file"
  if scheme:
    raise errors.UserError(
      f"{kind} {scheme}://{path} is a URL; {kind}s are read from a local path: copy it here."
    )
  if entry == "get_config":
    # The README's `configs/tt_mnist.py` also runs outside a clone, as the packaged config.
    packaged = re.fullmatch(r"(?:\./)?configs/(\w+)\.py", path)
    if packaged and not pathlib.Path(path).exists():
      path = packaged_config_file(packaged.group(1)) or path
    path = packaged_config_file(path) or path
  if not path.endswith(".py") or not pathlib.Path(path).is_file():
    if entry == "get_plan":
      raise errors.UserError(
        f"plan file {path!r} does not exist (or is not a .py file); pass --plan "
        "path/to/plan.py[:arg], a file whose get_plan(arg=None) returns the plan dict."
      )
    raise errors.UserError(
      f"config {path!r} is neither a .py file nor a packaged config; pass --config "
      "path/to/config.py[:args] or one of " + ", ".join(packaged_config_names()) + "."
    )
  name = "tnjax_config_" + re.sub(r"\W", "_", path)
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except SyntaxError as e:
    raise errors.UserError(f"{kind} {path} line {e.lineno}: {e.msg}; fix the file.") from e
  except ImportError as e:
    raise errors.UserError(f"{kind} {path} cannot be imported: {e}.") from e
  except Exception as e:  # pylint: disable=broad-except  # the user's code: one line
    raise user_code_error(path, e) from e
  if not callable(getattr(module, entry, None)):
    what = "config returns its ConfigDict" if entry == "get_config" else "file returns its dict"
    raise errors.UserError(
      f"{kind} {path} defines no {entry}(); a tnjax {what} from {entry}(arg=None)."
    )
  return module, (arg or None)


def user_code_error(path: str, error: Exception, context: str = "") -> errors.UserError:
  """An exception raised by a user's config or plan file, as one line naming the file and
  the line of it where it happened (and `context`, e.g. the argument it was given)."""
  if isinstance(error, errors.UserError):
    return error
  line = None
  for frame, lineno in traceback.walk_tb(error.__traceback__):
    if pathlib.Path(frame.f_code.co_filename).resolve() == pathlib.Path(path).resolve():
      line = lineno
  where = (f"{path} line {line}" if line else path) + (f" ({context})" if context else "")
  fix = "fix the argument or the file" if context else "fix the file"
  return errors.UserError(f"{where}: {type(error).__name__}: {error}; {fix}.")


def call_user_function(path: str, function, *args):
  """function(*args) from a user's file (get_config, get_plan): any exception is one line."""
  try:
    return function(*args)
  except errors.INPUT_ERRORS as e:
    frames = list(traceback.walk_tb(e.__traceback__))
    if pathlib.Path(frames[-1][0].f_code.co_filename).resolve() != pathlib.Path(path).resolve():
      raise  # tnjax's own check of the argument: its message says which value and why
    raise user_code_error(path, e, f"given {args[0]!r}" if args else "") from e
  except Exception as e:  # pylint: disable=broad-except
    raise user_code_error(path, e) from e


def load_config(config_path: str, overrides=None) -> ml_collections.ConfigDict:
  """A config as every program loads it: get_config(arg), overridden, locked.

  Args:
    config_path: 'path.py[:arg]', or a packaged config's name ('tt_mnist[:arg]').
    overrides: dotted field -> value; strings (as the command line gives them,
      `--config.x=v`, see `split_overrides`) are parsed by the type of the field they set.

  Returns:
    The locked ml_collections.ConfigDict (a typo'd field cannot be added later).
  """
  module, arg = load_module(config_path)
  return config_of(module, arg, overrides)


def config_of(module, arg: str | None, overrides=None) -> ml_collections.ConfigDict:
  """What load_config returns, from a config module already loaded (a sweep loads it once):
  get_config(arg), checked to be a ConfigDict, with `overrides`, locked."""
  args = (arg,) if arg else ()
  with errors.input_errors_are_user_errors():  # a bad argument value: one line
    config = call_user_function(module.__file__, module.get_config, *args)
  if not isinstance(config, ml_collections.ConfigDict):
    raise errors.UserError(
      f"get_config() of {module.__file__} returned a {type(config).__name__}, not an "
      "ml_collections.ConfigDict."
    )
  config = apply_overrides(config, overrides or {})
  config.lock()
  return config


def plain_number(value):
  """A NumPy or JAX numeric scalar (np.prod's np.int64, a 0-d array) as the Python number
  it holds, so that checks and JSON records take it; anything else unchanged."""
  dtype = getattr(value, "dtype", None)
  if isinstance(value, (bool, int, float)) or dtype is None or getattr(value, "shape", ()) != ():
    return value
  numeric = np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
  return value.item() if numeric else value


def is_number(value) -> bool:
  """A plain int or float, what numeric config, plan and budget fields take (bool is an
  int to Python, but `ratio: True` is a mistake)."""
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_value(item: str) -> bool:
  """Whether a command-line item is a value rather than the next flag ('-1' is a value)."""
  if not item.startswith("-"):
    return True
  try:
    float(item)
    return True
  except ValueError:
    return False


def split_overrides(argv: list[str]) -> tuple[list[str], dict]:
  """(the other arguments, {field: text}) from `--config.a.b=v`, `--config.a.b v` (as
  ml_collections' own config flags take it) and `--noconfig.flag` items. A bare
  `--config.flag` (no value follows) means True."""
  rest, overrides, items = [], {}, list(argv)
  index = 0
  while index < len(items):
    item = items[index]
    if item.startswith("--noconfig."):
      overrides[item[len("--noconfig.") :]] = False
    elif item.startswith("--config."):
      key, sep, text = item[len("--config.") :].partition("=")
      if not sep and index + 1 < len(items) and _is_value(items[index + 1]):
        index += 1
        text, sep = items[index], "="
      overrides[key] = text if sep else True
    else:
      rest.append(item)
    index += 1
  return rest, overrides


def apply_overrides(
  config: ml_collections.ConfigDict, overrides: dict, *, new_leaves: bool = False
) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted-field overrides set.

  A string value for a non-string field is parsed by that field's type (the
  command line gives strings). Every field named must exist unless `new_leaves`
  (a config's sweep() may add a leaf under an existing field, e.g. a spec's ranks);
  a value may replace a whole sub-config (a point can swap a layer spec).
  """
  if not isinstance(overrides, (Mapping, ml_collections.ConfigDict)):
    raise errors.UserError(
      f"config overrides are a dict of dotted field -> value, e.g. {{'num_epochs': 3}}; got "
      f"{type(overrides).__name__} {overrides!r:.40} (a config's own argument goes after a "
      "colon: 'tt_mnist:epochs=3')."
    )
  config = copy.deepcopy(config)
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    for i, name in enumerate(parents):
      if not isinstance(node, ml_collections.ConfigDict) or name not in node:
        raise errors.UserError(_unknown_field(config, ".".join(parents[: i + 1]), key))
      node = node[name]
    if not isinstance(node, ml_collections.ConfigDict):
      raise errors.UserError(_unknown_field(config, key, key))
    if leaf not in node and not new_leaves:
      raise errors.UserError(_unknown_field(config, key, key))
    current = node[leaf] if leaf in node else None
    if isinstance(value, str) and not isinstance(current, str):
      value = config_args.typed_value(value, current, f"--config.{key}")
    elif value is True and current is not None and not isinstance(current, bool):
      raise errors.UserError(f"--config.{key} needs a value: --config.{key}=VALUE.")
    with node.unlocked(), node.ignore_type():
      node[leaf] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
  return config


def _field_names(tree, prefix: str = "") -> list[str]:
  names = []
  for key, value in tree.items():
    names.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      names += _field_names(value, f"{prefix}{key}.")
  return names


def _unknown_field(config, missing: str, key: str) -> str:
  near = difflib.get_close_matches(missing, _field_names(config), n=4, cutoff=0.5)
  return (
    f"--config.{key}: the config has no field {missing!r}"
    + (f"; nearest: {', '.join(near)}" if near else "")
    + "."
  )
