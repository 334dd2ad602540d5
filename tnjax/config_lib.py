"""Configs: the one loader, the trainer's defaults and the schema facts about them.

Configs are data: every experiment is `get_config(arg)` in configs/, built from
`base_config()` plus a few fields. `--config configs/x.py:runlocal,rank=4` passes
'runlocal,rank=4' as `arg`; `--config.num_epochs=3` overrides a field. Every
program (train, sweep, compress, evaluate) loads configs through `load_config`,
so a config file and its overrides mean the same thing everywhere.
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib.resources
import importlib.util
import pathlib
import re
import traceback

import ml_collections

from tnjax import data as data_lib
from tnjax import errors


def parse_arg(arg: str | None, **spec) -> ml_collections.ConfigDict:
  """Parses 'a=1,b,c=x' into a ConfigDict typed by the defaults in `spec`.

  A bare key means True. Keys outside `spec` are an error naming the known keys.
  """
  result = ml_collections.ConfigDict(dict(spec))
  if not arg:
    return result
  for item in arg.split(","):
    key, _, value = item.partition("=")
    key = key.strip()
    if key not in spec:
      near = difflib.get_close_matches(key, list(spec), n=3, cutoff=0.5)
      raise errors.UserError(
        f"config argument {key!r} is unknown"
        + (f" (did you mean {' or '.join(near)}?)" if near else "")
        + f"; known arguments: {', '.join(sorted(spec))}."
      )
    default = spec[key]
    if not value:
      parsed = True
    elif isinstance(default, bool):
      if value.lower() not in ("true", "false", "1", "0"):
        raise errors.UserError(f"config argument {key}={value!r} must be true or false.")
      parsed = value.lower() in ("true", "1")
    else:
      parsed = _typed(value, default, f"config argument {key}")
    result[key] = parsed
  return result


def parse_int_list(text: str, flag: str) -> list[int] | None:
  """'0,1,2' from a list flag (--points, --seeds) as ints; '' is None. One line otherwise."""
  if not text:
    return None
  items = [item.strip() for item in text.split(",")]
  try:
    values = [int(item) for item in items]
  except ValueError:
    bad = next(item for item in items if not item.lstrip("-").isdigit())
    raise errors.UserError(
      f"{flag} {text!r}: {bad!r} is not an integer; give comma-separated integers, e.g. "
      f"{flag} 0,1,2."
    ) from None
  if len(set(values)) != len(values):
    raise errors.UserError(f"{flag} {text!r} lists a value twice; give distinct integers.")
  return values


FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def apply_offline_source(c: ml_collections.ConfigDict, fashion_idx: bool, synthetic: bool):
  """The `fashion_idx` / `synthetic` config arguments: read data without TFDS."""
  if fashion_idx:
    c.data.source, c.data.name, c.data.idx_dir = "idx", "fashion_mnist", FASHION_MNIST_IDX_DIR
  if synthetic:
    c.data.source, c.data.name = "synthetic", "synthetic"
  return c


def base_config() -> ml_collections.ConfigDict:
  """Every field the trainer reads, with defaults."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Compute dtype of every layer ('bfloat16': bf16 activations and contractions;
  # parameters, optimizer state and the loss stay float32). A spec's dtype overrides it.
  c.dtype = "float32"
  c.data = data_lib.default_data_config()
  c.model = ml_collections.ConfigDict({"name": "fc2"})

  c.num_epochs = 10
  c.batch_size = 100
  c.eval_batch_size = 1000

  c.optimizer = ml_collections.ConfigDict(
    {
      "name": "sgd",  # sgd | adam | adamw
      "momentum": 0.9,
      "nesterov": False,
      "weight_decay": 0.0,  # L2 on all parameters (added to the gradient)
    }
  )
  # Parameters the optimizer updates: '' = all; otherwise a regex searched in each
  # parameter's path ('fc6/cores/0'), e.g. 'fc6|fc7|fc8' to train only the head of a
  # pretrained VGG. Frozen parameters get no update and no weight decay.
  c.trainable = ""
  c.schedule = ml_collections.ConfigDict(
    {
      "name": "constant",  # constant | logspace | cosine | step
      "learning_rate": 1e-2,  # initial value
      "end_learning_rate": 1e-5,
      "decay_epochs": 0,  # logspace: epochs over which lr goes to the end value (0 = all)
      "warmup_epochs": 0,  # cosine: linear warm-up
      "decay_steps": 0,  # step: multiply by decay_rate every decay_steps steps
      "decay_rate": 1.0,
    }
  )

  c.checkpoint = ml_collections.ConfigDict(
    {
      "every_steps": 0,  # 0 = at the end of every epoch
      "keep": 3,
      "async_save": True,
    }
  )
  # Devices: data=1, model=1: one device; --config.mesh.data=-1: data parallel over all;
  # data=4, model=2 also splits arrays of >= mesh_min_shard_size entries over 'model'.
  c.mesh = ml_collections.ConfigDict({"data": 1, "model": 1})
  c.mesh_min_shard_size = 1 << 16
  # Trained dense weights to start from (tnjax/training/pretrained.py): .npz / .h5 of arrays named
  # like the model's parameters ('conv1_1/kernel'); rename maps file names to those paths.
  # allow_random_frozen: let config.trainable freeze layers no file sets (smoke runs only;
  # otherwise a frozen layer without weights is refused).
  c.pretrained = ml_collections.ConfigDict(
    {"path": "", "rename": ml_collections.ConfigDict(), "allow_random_frozen": False}
  )
  c.log_every_steps = 50
  c.progress_bar = True
  c.tensorboard = True  # TensorBoard event files in the workdir (--noconfig.tensorboard: none)
  c.wandb = ml_collections.ConfigDict(
    {
      "mode": "disabled",  # disabled | offline | online
      "project": "tnjax",
      "entity": "",
      "name": "",
      "group": "",
    }
  )
  return c


def shrink_for_smoke_run(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`runlocal`: the same experiment at a size that runs in seconds."""
  c.num_epochs = 2
  c.batch_size = min(c.batch_size, 16)
  c.eval_batch_size = 64
  c.data.max_train_examples = 128
  c.data.max_test_examples = 64
  c.log_every_steps = 2
  return c


# --- Schema facts: which saved fields may differ, which were added or renamed ---

# Dotted prefixes of fields that cannot change the trained parameters: a resume may change them.
HARMLESS_FIELDS = (
  "log_every_steps",
  "progress_bar",
  "tensorboard",
  "checkpoint.",
  "eval_batch_size",
  "wandb.",
  "mesh.",
  "mesh_min_shard_size",
  "data.data_dir",
  "data.idx_dir",
  "data.max_test_examples",
  "data.held_out_eval",  # which examples are evaluated, not which train
  "pretrained.allow_random_frozen",
)
# Fields added after runs were made, with the value that reproduces those runs:
# a saved config without the field and a current one holding this value agree.
ADDED_WITH_DEFAULT = {
  "dtype": "float32",
  "trainable": "",
  "data.normalization": "imagenet",
  "data.whiten": "",
  "schedule.decay_steps": 0,
  "schedule.decay_rate": 1.0,
  "pretrained.allow_random_frozen": False,
  "data.held_out_eval": 0,
}
# config.model fields of configs written before every model took `layers` (tnjax <= stop 14).
RENAMED_MODEL_FIELDS = {"hidden_layer": "layers.hidden", "output_layer": "layers.output"}
WANDB_MODES = ("disabled", "offline", "online")


def is_harmless(key: str) -> bool:
  """Whether the dotted field `key` may change when a run resumes."""
  return any(
    key == h or key.startswith(h) if h.endswith(".") else key == h for h in HARMLESS_FIELDS
  )


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
  path, _, arg = config_path.partition(":")
  if entry == "get_config":
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
    raise errors.UserError(f"config file {path} line {e.lineno}: {e.msg}; fix the file.") from e
  except ImportError as e:
    raise errors.UserError(f"config file {path} cannot be imported: {e}.") from e
  except Exception as e:  # pylint: disable=broad-except  # the user's code: one line
    raise user_code_error(path, e) from e
  if not callable(getattr(module, entry, None)):
    what = "config returns its ConfigDict" if entry == "get_config" else "file returns its dict"
    raise errors.UserError(
      f"config file {path} defines no {entry}(); a tnjax {what} from {entry}(arg=None)."
    )
  return module, (arg or None)


def user_code_error(path: str, error: Exception) -> errors.UserError:
  """An exception raised by a user's config or plan file, as one line naming the file and
  the line of it where it happened."""
  if isinstance(error, errors.UserError):
    return error
  line = None
  for frame, lineno in traceback.walk_tb(error.__traceback__):
    if pathlib.Path(frame.f_code.co_filename).resolve() == pathlib.Path(path).resolve():
      line = lineno
  where = f"{path} line {line}" if line else path
  return errors.UserError(f"{where}: {type(error).__name__}: {error}; fix the file.")


def call_user_function(path: str, function, *args):
  """function(*args) from a user's file (get_config, get_plan): any exception is one line."""
  try:
    return function(*args)
  except errors.INPUT_ERRORS:  # a bad argument value, its message says which
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise user_code_error(path, e) from e


def load_config(config_path: str, overrides=None) -> ml_collections.ConfigDict:
  """get_config(arg) of 'path.py[:arg]' with `overrides` applied, locked.

  `overrides` maps dotted fields to values; strings given on the command line
  (`--config.x=v`, see `split_overrides`) are parsed by the type of the field they set.
  """
  module, arg = load_module(config_path)
  config = call_get_config(module, arg)
  if not isinstance(config, ml_collections.ConfigDict):
    raise errors.UserError(
      f"get_config() of {config_path.partition(':')[0]} returned a "
      f"{type(config).__name__}, not an ml_collections.ConfigDict."
    )
  config = apply_overrides(config, overrides or {})
  config.lock()
  return config


def call_get_config(module, arg: str | None) -> ml_collections.ConfigDict:
  """module.get_config(arg); any exception it raises (a bad argument value) is one line."""
  args = (arg,) if arg else ()
  with errors.input_errors_are_user_errors():
    return call_user_function(module.__file__, module.get_config, *args)


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
      value = _typed(value, current, f"--config.{key}")
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


def _typed(text: str, current, what: str):
  """`text` parsed as the type of `current` (bool, int, float, or a Python literal)."""
  if isinstance(current, bool):
    if text.lower() not in ("true", "false", "1", "0"):
      raise errors.UserError(f"{what}={text!r} must be true or false.")
    return text.lower() in ("true", "1")
  try:
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
  except ValueError:
    raise errors.UserError(
      f"{what}={text!r} is not a{'n int' if isinstance(current, int) else ' float'}."
    ) from None
  if isinstance(current, str):
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text
  return value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
