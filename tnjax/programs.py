"""What every tnjax program (train, compress, evaluate, export, sweep) does first.

Importing tnjax as a library changes no setting; a program's `start` sets what the
programs rely on: quiet logs, fresh gs:// listings through gcsfs (fileio), and JAX's
persistent compilation cache (`--nocompile_cache` turns it off). The flags here are
defined when a program module imports this one, never by `import tnjax`.
"""

from __future__ import annotations

import logging as std_logging
import os
import platform
import re
import sys

from absl import flags

from tnjax import config_lib, fileio

_COMPILE_CACHE = flags.DEFINE_bool(
  "compile_cache",
  True,
  "Keep compiled XLA programs in JAX's persistent cache, one directory per machine kind "
  "under $XDG_CACHE_HOME/tnjax (or ~/.cache/tnjax), so a rerun skips the compiles; "
  "JAX_COMPILATION_CACHE_DIR chooses another directory.",
)


def run_with_overrides(main) -> None:
  """absl's app.run(main) for a program that takes a config: the --config.FIELD=VALUE
  and --noconfig.FIELD items are taken out of argv first and passed as main(argv, overrides)."""
  from absl import app  # pylint: disable=g-import-not-at-top

  argv, overrides = config_lib.split_overrides(sys.argv)

  def run(args):
    try:
      return main(args, overrides)
    except app.UsageError as e:  # a stray argument, a missing flag: one line, not the usage
      _usage_error(e)

  app.run(run, argv=argv, flags_parser=_parse_flags)


def _usage_error(error) -> None:
  from tnjax import errors  # pylint: disable=g-import-not-at-top

  print(f"tnjax: error: {error} (--helpshort lists the flags)", file=sys.stderr, flush=True)
  sys.exit(errors.EXIT_USER_ERROR)


def _parse_flags(argv):
  """absl's flag parsing, a mistake (a missing --workdir, --finetune_epochs two) as the
  programs' other errors are: one line, exit code 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _usage_error(e)


def start(argv, *, compile_cache: bool = True) -> None:
  """Refuses stray arguments, keeps the console to the program's own lines (Orbax logs
  every checkpoint step at INFO) unless --verbosity says, sets up file access and (unless
  `compile_cache=False`: a program that calls use_compile_cache itself, after
  jax.distributed.initialize) the compilation cache."""
  from absl import app, logging  # pylint: disable=g-import-not-at-top

  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
    # gcsfs logs each failed request's traceback before raising; the program's one line
    # says what failed (errors.run_cli), so its retries stay quiet.
    std_logging.getLogger("gcsfs").setLevel(std_logging.CRITICAL)
  fileio.configure_for_programs()
  if not _COMPILE_CACHE.value:  # also for the processes this one starts (a sweep's trainers)
    os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"
  if compile_cache:
    use_compile_cache()


def user_cache_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "tnjax")


def machine_kind() -> str:
  """'<device kind>-<architecture>[-<CPU model>]', e.g. 'nvidia-h200-x86_64' or
  'cpu-x86_64-amd-epyc-9b14': compiled programs are kept apart per kind, since they
  are only reusable on the same one. Starts JAX's backend (after distributed start)."""
  import jax  # pylint: disable=g-import-not-at-top

  parts = [jax.devices()[0].device_kind, platform.machine()]
  if jax.default_backend() == "cpu":
    parts.append(_cpu_model())
  slug = re.sub(r"[^a-z0-9_.]+", "-", "-".join(p for p in parts if p).lower())
  return slug.strip("-")[:80]


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def use_compile_cache() -> str | None:
  """Turns JAX's persistent compilation cache on (returns the directory it uses), or off
  under --nocompile_cache. Call it after jax.distributed.initialize: it asks JAX for the
  device kind."""
  import jax  # pylint: disable=g-import-not-at-top

  if not _COMPILE_CACHE.value:
    jax.config.update("jax_enable_compilation_cache", False)
    return None
  if not jax.config.jax_enable_compilation_cache:
    return None  # turned off through JAX's own setting (e.g. by a sweep run with the flag)
  directory = jax.config.jax_compilation_cache_dir  # JAX_COMPILATION_CACHE_DIR wins
  if not directory:
    directory = os.path.join(user_cache_dir(), "xla", machine_kind())
    jax.config.update("jax_compilation_cache_dir", directory)
  return directory
