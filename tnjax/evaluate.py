r"""Command line: evaluate any run on its test split, or write its plain dense copy.

  python -m tnjax.evaluate --workdir runs/fc2_tt            # test loss, accuracy, top-5
  python -m tnjax.evaluate --workdir runs/fc2_tt --merge runs/fc2_tt/merged.npz

The run may be finished, interrupted (its newest checkpoint) or compressed
(tnjax.compress). --merge writes every layer as its dense weight (`to_dense()`), named
like the model's parameters ('hidden/kernel', ...): a file `config.pretrained.path`
reads into the dense architecture, or any JAX / NumPy code serves.
"""

from __future__ import annotations

import json
import sys

from absl import flags

from tnjax import errors, programs

_WORKDIR = flags.DEFINE_string("workdir", None, "The run to evaluate (local or gs://).")
_MERGE = flags.DEFINE_string("merge", "", "Write the dense copy's arrays to this .npz.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).")
flags.DEFINE_bool("debug", False, "Show tracebacks instead of one-line errors.")
flags.mark_flags_as_required(["workdir"])


def _evaluate(*args, **kwargs):
  from tnjax.compression import evaluate_export  # pylint: disable=g-import-not-at-top

  return evaluate_export.evaluate_run(*args, **kwargs)


def main(argv, overrides: dict):
  programs.start(argv)
  sys.exit(
    errors.run_cli(
      lambda: print(
        json.dumps(
          _evaluate(_WORKDIR.value, step=_STEP.value, merge=_MERGE.value, overrides=overrides)
        )
      )
    )
  )


if __name__ == "__main__":
  programs.run_with_overrides(main)
