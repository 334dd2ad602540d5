r"""Command line: compress a trained run, evaluate it, fine-tune it as an ordinary run.

  python -m tnjax.compress --from runs/fc2_dense --plan plans/fc2_tt.py --workdir runs/fc2_tt \
      [--finetune_epochs 3] [--config.schedule.learning_rate=0.01 ...]

PLAN.py defines get_plan(arg=None) returning the plan: {layer name or glob: spec} (sizes
given, or `error` / `ratio`), or {"layers": {...}, "budget": {"ratio": 20}} to share a
whole-model budget out (tnjax.compression). A measured budget ({"accuracy_drop": 0.5},
{"latency_ms": 2.0}, or a weight budget with "allocate": "sensitivity") is searched on
--validation_examples held out of the training split, each candidate fine-tuned
--search_finetune_epochs as a run in WORKDIR/search (rerun the command to resume it;
WORKDIR/search/search.md has the front; `--status --workdir WORKDIR` shows how far it
is). The source run's newest checkpoint and saved
config are read; each planned layer is fitted to its trained weight; the table of
formats, sizes, weights before / after, reconstruction errors and execution paths is
printed; the compressed model is evaluated at once; then (with --finetune_epochs N > 0)
fine-tuned by the normal trainer in WORKDIR: a run like any other (locked, resumable,
logged, sweepable; rerun the same command to resume). WORKDIR/compress.{md,json} report
the accuracy of the source, right after conversion and after fine-tuning.

Exit codes as tnjax.train's.
"""

from __future__ import annotations

import sys
import types

from absl import flags

from tnjax import errors, programs

_FROM = flags.DEFINE_string("from", None, "Workdir of the trained source run (local or gs://).")
_PLAN = flags.DEFINE_string("plan", None, "Plan file[:arg] defining get_plan().")
_WORKDIR = flags.DEFINE_string("workdir", None, "New workdir for the compressed run.")
_FINETUNE = flags.DEFINE_integer("finetune_epochs", 0, "Epochs of fine-tuning after conversion.")
_ALLOW_CHANGE = flags.DEFINE_bool(
  "allow_config_change",
  False,
  "Continue a fine-tune under other settings (--finetune_epochs or --config overrides).",
)
_SEARCH_EPOCHS = flags.DEFINE_integer(
  "search_finetune_epochs",
  1,
  "Epochs each candidate of a measured budget (accuracy_drop, latency_ms) is fine-tuned.",
)
_VALIDATION = flags.DEFINE_integer(
  "validation_examples",
  5000,
  "Training examples held out of every fine-tune, on which a measured budget selects.",
)
_STATUS = flags.DEFINE_bool(
  "status", False, "Print where WORKDIR's rank search stands (candidates, best, runs); exit."
)
flags.DEFINE_bool("debug", False, "Show tracebacks instead of one-line errors.")
flags.mark_flags_as_required(["workdir"])  # --from and --plan too, except with --status


def main(argv, overrides: dict):
  programs.start(argv)

  def run():
    from tnjax.compression import workflow  # pylint: disable=g-import-not-at-top

    if _STATUS.value:
      from tnjax.compression.search_status import search_status  # pylint: disable=g-import-not-at-top

      print(search_status(_WORKDIR.value))
      return
    if _FROM.value is None or _PLAN.value is None:
      raise errors.UserError("--from and --plan are required (except with --status).")
    from tnjax.training import preemption  # pylint: disable=g-import-not-at-top

    preemption.program_signal_handlers()
    workflow.compress_run(
      _FROM.value,
      _PLAN.value,
      _WORKDIR.value,
      finetune_epochs=_FINETUNE.value,
      overrides=overrides,
      allow_config_change=_ALLOW_CHANGE.value,
      search_finetune_epochs=_SEARCH_EPOCHS.value,
      validation_examples=_VALIDATION.value,
    )

  sys.exit(errors.run_cli(run))


class _CallableProgram(types.ModuleType):
  """`tnjax.compress(model, plan)` is compression.compress_model even once this program's
  module is imported (an attribute of the package then names the module, not the function)."""

  def __call__(self, *args, **kwargs):
    from tnjax.compression.convert import compress_model  # pylint: disable=g-import-not-at-top

    return compress_model(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableProgram

if __name__ == "__main__":
  programs.run_with_overrides(main)
