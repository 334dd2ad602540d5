r"""Command line: python -m tnjax.train --config configs/x.py[:args] --workdir DIR.

Any config field can be overridden: --config.num_epochs=3 --config.model.layers.hidden.ranks=4
(--noconfig.progress_bar sets a flag false). A workdir that holds checkpoints is
resumed from the newest one, if its config still matches (--allow_config_change
continues under changed settings and records the change). DIR may be a local path
or gs://bucket/path.

Exit codes: 0 finished, 2 a problem to fix (one line on stderr; --debug shows the
traceback), 3 diverged, 4 the workdir is in use by another trainer, 75 preempted
(SIGTERM) and 130 interrupted (SIGINT, Ctrl-C): a checkpoint was saved at the end of
the step; rerun the same command to resume.
"""

from __future__ import annotations

import sys
import types

from tnjax import config_lib
from tnjax import errors

_CONFIG = _WORKDIR = _ALLOW_CONFIG_CHANGE = None  # absl flag holders, once define_flags ran


def define_flags() -> None:
  """The program's flags (and every program's, tnjax.programs). Defined only when it runs as
  a program, never on import: `tn.train` from a script must not take over its flag names
  (--config, --workdir are common ones)."""
  global _CONFIG, _WORKDIR, _ALLOW_CONFIG_CHANGE
  from absl import flags  # pylint: disable=g-import-not-at-top

  from tnjax import programs  # noqa: F401  (defines --compile_cache)

  _CONFIG = flags.DEFINE_string(
    "config", None, "Config file[:args]; override its fields with --config.FIELD=VALUE."
  )
  _WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory (local or gs://) for checkpoints and metrics."
  )
  _ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change",
    False,
    "Resume even if the config changed what is trained (model, "
    "optimizer, schedule, data, seed); the change is recorded in config_history.jsonl.",
  )
  flags.DEFINE_bool(
    "debug", False, "Show tracebacks instead of one-line errors (also TNJAX_DEBUG=1)."
  )
  flags.mark_flags_as_required(["config", "workdir"])


def main(argv, overrides: dict):
  from tnjax import programs  # pylint: disable=g-import-not-at-top

  programs.start(argv, compile_cache=False)

  def run():
    config = config_lib.load_config(_CONFIG.value, overrides)
    from tnjax import sharding  # pylint: disable=g-import-not-at-top
    from tnjax.training import preemption  # pylint: disable=g-import-not-at-top

    preemption.program_signal_handlers()
    sharding.maybe_initialize_distributed()  # multi-host only; must precede any JAX computation
    programs.use_compile_cache()  # asks JAX for the device kind: after the start above
    from tnjax.training import trainer  # imported late so --help is fast

    # $VARS expand, so a W&B sweep gives each run its own workdir: runs/sweep/$WANDB_RUN_ID.
    trainer.train(config, _WORKDIR.value, allow_config_change=_ALLOW_CONFIG_CHANGE.value)

  sys.exit(errors.run_cli(run))


class _TrainProgram(types.ModuleType):
  """This module, callable: `tn.train(config, workdir, allow_config_change=False)` from
  Python is what the program runs (tnjax.training.train), so the name a user guesses works."""

  def __call__(self, config, workdir, **options):
    from tnjax.training import trainer  # pylint: disable=g-import-not-at-top

    return trainer.train(config, workdir, **options)


sys.modules[__name__].__class__ = _TrainProgram

if __name__ == "__main__":
  define_flags()
  from tnjax import programs  # pylint: disable=g-import-not-at-top

  programs.run_with_overrides(main)
