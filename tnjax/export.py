r"""Command line: write a run's inference function (preprocessing included) for serving.

  python -m tnjax.export --workdir runs/fc2_tt --out runs/fc2_tt/model.jaxexport \
      [--tflite runs/fc2_tt/model.tflite]

The file is a serialized `jax.export` artefact with a symbolic batch dimension
(tnjax.compression.serving); `jax.export.deserialize(bytes).call(images)` runs it.
"""

from __future__ import annotations

import sys

from absl import flags

from tnjax import config_lib, errors

_WORKDIR = flags.DEFINE_string("workdir", None, "The run to export (local or gs://).")
_OUT = flags.DEFINE_string("out", None, "Where to write the artefact (local or gs://).")
_TFLITE = flags.DEFINE_string("tflite", "", "Also write a TFLite model here (.tflite).")
flags.DEFINE_bool("debug", False, "Show tracebacks instead of one-line errors.")
flags.mark_flags_as_required(["workdir", "out"])


def main(argv, overrides: dict):
  config_lib.start_program(argv)
  del overrides

  def run():
    from tnjax import fileio  # pylint: disable=g-import-not-at-top
    from tnjax.compression import load, serving  # pylint: disable=g-import-not-at-top

    model, config = load(_WORKDIR.value)
    artefact = serving.export_model(model, config, serving.run_preprocessing(_WORKDIR.value))
    out = fileio.workdir_path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(artefact)
    print(f"Wrote {out} ({len(artefact):,} bytes).")
    if _TFLITE.value:
      preprocessing = serving.run_preprocessing(_WORKDIR.value)
      flatbuffer = serving.export_tflite(model, config, preprocessing)
      fileio.workdir_path(_TFLITE.value).write_bytes(flatbuffer)
      print(f"Wrote {_TFLITE.value} ({len(flatbuffer):,} bytes).")

  sys.exit(errors.run_cli(run))


if __name__ == "__main__":
  config_lib.run_with_overrides(main)
