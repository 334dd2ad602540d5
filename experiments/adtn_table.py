r"""ADTN table (Qing et al. 2025): ADTN-compressed networks against their dense versions.

  python experiments/adtn_table.py --workdir runs/adtn --out experiments/results/adtn_fashion_mnist

Rows are runs (any model); the compressed layers (ADTN, or the TT / CP of the
deep-vs-shallow comparison) and their sizes come from the model built abstractly
from each run's config.
"""

from __future__ import annotations

import argparse
import warnings

from flax import nnx

import report_lib
from tnjax import models
from tnjax.nn import layer_rows

PAPER_NOTE = (
  "Paper (Qing et al. 2025; PAPERS.md section 4): FC-2, LeNet-5, AlexNet, ZFNet and "
  "VGG-16 compressed by ADTNs; the sources here give only VGG-16's numbers: its two big "
  "linear layers -> 424 parameters, CIFAR-10 90.17% -> 91.74%."
)
IMAGE_SHAPES = {"fc2": (32, 32, 1), "lenet5": (28, 28, 1)}


def describe(config) -> tuple[str, int, int]:
  """(compressed layers and their shapes, e.g. an ADTN's Q and M; their weights; the dense
  weights they replace)."""
  model_config = config["model"]
  shape = IMAGE_SHAPES.get(model_config["name"], (32, 32, 3))
  if model_config["name"] == "fc2" and not config["data"]["pad_to"]:
    shape = (28, 28, 1)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = nnx.eval_shape(lambda: models.build_model(model_config, shape, 10, rngs=nnx.Rngs(0)))
  rows = [r for r in layer_rows(model) if r["kind"] != "dense"]
  label = "; ".join(f"{r['name']} {r['shape']}" for r in rows) or "dense"
  return label, sum(r["params"] for r in rows), sum(r["dense_params"] for r in rows)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--note", action="append", default=[], help="a line added to the notes")
  args = parser.parse_args()
  runs = report_lib.load_runs(args.workdir)
  table = []
  groups = report_lib.seed_groups(runs)  # runs differing only in the seed: one row
  for group in sorted(groups, key=lambda g: (g[0]["config"]["model"]["name"], g[0]["dir"])):
    config = group[0]["config"]
    finished = [r["result"] for r in group if r["result"] is not None]
    label, params, dense = describe(config)
    table.append(
      [
        config["model"]["name"],
        label,
        report_lib.percent_pm(report_lib.accuracies(group)),
        f"{finished[0]['num_params']:,}" if finished else "missing",
        f"{params:,} / {dense:,}" if params else "-",
        f"{report_lib.median_epoch_seconds(group) or 0:.1f}",
      ]
    )
  header = [
    "model",
    "compressed layers",
    "test acc",
    "total params",
    "compressed layers' params / dense weights (with bias)",
    "s / epoch",
  ]
  notes = [report_lib.describe_setup(runs), PAPER_NOTE, *args.note]
  for path in report_lib.write_outputs(args.out, "ADTN vs dense", notes, header, table):
    print(path)


if __name__ == "__main__":
  report_lib.run_main(main)
