r"""Serving a run on the data set's own examples: the test accuracy of tnjax.load_predict and
of the exported artefact, given the raw uint8 test images, against the run's own.

  python experiments/serving_check.py --out experiments/results/serving_fashion_mnist \
      runs/fc2 runs/lenet5 runs/tt_fc2

For each run: result.json's test accuracy; tnjax.load_predict(run) on the raw test split;
the `tnjax.export` artefact (jax.export, deserialized) on the same; and, for contrast,
the model alone on images scaled to [0, 1], what a user fed the model before runs recorded
their input pipeline.
"""

from __future__ import annotations

import argparse
import platform
import sys

import jax
import numpy as np

import tnjax
from tnjax import fileio
from tnjax.compression import serving
from tnjax.data import eval_pipeline, memory


def _accuracy(logits, labels) -> float:
  return float(np.mean(np.argmax(np.asarray(logits), -1) == labels))


def check(workdir: str) -> dict:
  predict = tnjax.load_predict(workdir)
  _, (raw, labels), _ = memory.load_raw_splits(predict.config.data)
  pipeline, arrays = serving.run_input_pipeline(workdir, predict.config)
  exported = jax.export.deserialize(
    bytearray(serving.export_model(predict.model, pipeline, arrays))
  )
  batches = range(0, len(raw), 1000)
  served = np.concatenate([np.asarray(predict(raw[i : i + 1000])) for i in batches])
  artefact = np.concatenate([np.asarray(exported.call(raw[i : i + 1000])) for i in batches])
  unit = raw.astype(np.float32) / 255.0
  pad = predict.config.data.pad_to
  if pad:  # the model's input size, without the pipeline's mean image
    unit = np.asarray(eval_pipeline.STEPS["pad"](unit, {"to": pad}, {}))
  naive = np.concatenate([np.asarray(predict.model(unit[i : i + 1000])) for i in batches])
  result = fileio.read_json(fileio.workdir_path(workdir) / "result.json") or {}
  return {
    "run": workdir,
    "pipeline": eval_pipeline.describe(pipeline),
    "run_accuracy": result.get("test_accuracy"),
    "load_predict": _accuracy(served, labels),
    "artefact": _accuracy(artefact, labels),
    "naive": _accuracy(naive, labels),
    "examples": int(len(labels)),
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="PREFIX: writes PREFIX.md and PREFIX.json")
  parser.add_argument("--note", default="", help="a line on how the runs were trained")
  parser.add_argument("runs", nargs="+")
  args = parser.parse_args(argv)
  rows = [check(run) for run in args.runs]
  lines = [
    "# Serving runs on the raw Fashion-MNIST test images",
    "",
    f"`python experiments/serving_check.py --out {args.out} {' '.join(args.runs)}`",
    "",
    f"Machine: {platform.machine()}, {jax.devices()[0].platform}, jax {jax.__version__}. "
    + args.note,
    "",
    "| run | input pipeline (inside the artefact) | run's test accuracy | load_predict, raw | "
    "export artefact, raw | model on x/255 (no pipeline) |",
    "|---|---|---:|---:|---:|---:|",
  ]
  for r in rows:
    lines.append(
      f"| {r['run']} | {r['pipeline']} | {100 * r['run_accuracy']:.2f}% | "
      f"{100 * r['load_predict']:.2f}% | {100 * r['artefact']:.2f}% | {100 * r['naive']:.2f}% |"
    )
  text = "\n".join(lines) + "\n"
  fileio.write_text(args.out + ".md", text)
  fileio.write_json(args.out + ".json", rows)
  print(text)
  exact = all(r["load_predict"] == r["artefact"] == r["run_accuracy"] for r in rows)
  return 0 if exact else 1


if __name__ == "__main__":
  sys.exit(main())
