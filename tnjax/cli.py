"""absl's app.run with one-line errors for what goes wrong while parsing flags.

ml_collections raises a KeyError with a long traceback for `--config.x` naming a
field the config lacks; here that is one line listing the nearest field names.
"""

from __future__ import annotations

import difflib
import sys

from absl import app

from tnjax import errors


def _field_names(tree, prefix: str = "") -> list[str]:
  names = []
  for key, value in tree.items():
    names.append(prefix + key)
    if hasattr(value, "items"):
      names += _field_names(value, f"{prefix}{key}.")
  return names


def load_config(config_path: str):
  """get_config(arg) of 'path/to/config.py[:arg]'."""
  import importlib.util  # pylint: disable=g-import-not-at-top

  path, _, arg = config_path.partition(":")
  spec = importlib.util.spec_from_file_location("tnjax_cli_config", path)
  if spec is None:
    raise FileNotFoundError(f"Config file {path!r} does not exist.")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def unknown_override(argv, config_path: str) -> str | None:
  """The first --config.x override naming no field of the config, with the nearest names."""
  names = _field_names(load_config(config_path))
  for item in argv:
    if not item.startswith(("--config.", "--noconfig.")):
      continue
    name = item.split("=", 1)[0].split("config.", 1)[1]
    if name not in names:
      near = difflib.get_close_matches(name, names, n=4, cutoff=0.5)
      return (
        f"--config.{name}: the config has no field {name!r}"
        + (f"; nearest: {', '.join(near)}" if near else "")
        + "."
      )
  return None


def run(main) -> None:
  argv, started = list(sys.argv), []

  def main_started(args):
    started.append(True)
    return main(args)

  try:
    app.run(main_started)
  except (KeyError, AttributeError, ValueError) as e:  # raised while parsing --config.*
    if started or errors.debug_enabled(argv):
      raise
    config = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if config is None and "--config" in argv[:-1]:
      config = argv[argv.index("--config") + 1]
    message = None
    if config is not None:
      try:
        message = unknown_override(argv, config)
      except Exception:  # pylint: disable=broad-except
        message = None
    print(
      f"tnjax: error: {message or ' '.join(str(e).split())} (--debug shows the traceback)",
      file=sys.stderr,
      flush=True,
    )
    sys.exit(errors.EXIT_USER_ERROR)
