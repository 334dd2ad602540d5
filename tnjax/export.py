r"""Command line: write a run's inference function (its whole input pipeline inside) for serving.

  python -m tnjax.export --workdir runs/fc2_tt --out runs/fc2_tt/model.jaxexport \
      [--tflite runs/fc2_tt/model.tflite] [--step N]

The file is a serialized `jax.export` artefact with a symbolic batch dimension
(tnjax.compression.serving) that takes the data set's own examples (uint8 images at their
stored size for MNIST-like data and CIFAR) and applies the run's eval pipeline inside;
`jax.export.deserialize(bytes).call(images)` runs it. The input contract is printed and
written beside it (OUT.json).
"""

from __future__ import annotations

import sys

from absl import flags

from tnjax import errors, programs

_WORKDIR = flags.DEFINE_string("workdir", None, "The run to export (local or gs://).")
_OUT = flags.DEFINE_string("out", None, "Where to write the artefact (local or gs://).")
_TFLITE = flags.DEFINE_string("tflite", "", "Also write a TFLite model here (.tflite).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest).")
flags.DEFINE_bool("debug", False, "Show tracebacks instead of one-line errors.")
flags.mark_flags_as_required(["workdir", "out"])


def main(argv, overrides: dict):
  programs.start(argv)

  def run():
    from tnjax import fileio  # pylint: disable=g-import-not-at-top
    from tnjax.compression import evaluate_export  # pylint: disable=g-import-not-at-top

    if overrides:
      raise errors.UserError(
        f"tnjax.export takes no --config.* overrides (got {', '.join(overrides)}): it "
        "exports the run as it was trained."
      )
    out = fileio.check_output_file(_OUT.value, "--out")
    tflite = (
      fileio.check_output_file(_TFLITE.value, "--tflite", ".tflite") if _TFLITE.value else None
    )
    evaluate_export.export_run(_WORKDIR.value, out, tflite=tflite, step=_STEP.value)

  sys.exit(errors.run_cli(run))


if __name__ == "__main__":
  programs.run_with_overrides(main)
