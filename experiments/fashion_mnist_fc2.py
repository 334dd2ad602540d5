r"""FC-2 on real Fashion-MNIST: TT rank 8, TT rank 2, matrix rank and dense.

  apt-get install dataset-fashion-mnist     # IDX files in /usr/share/datasets/fashion-mnist
  python experiments/fashion_mnist_fc2.py --epochs 30 --workdir runs/fmnist_fc2

Each variant is the corresponding config (configs/tt_mnist.py, mr_mnist.py,
dense_mnist.py) with the `fashion_idx` argument, trained by the same
`train` the CLI calls. Finished runs are resumed / skipped from their
checkpoints. Writes experiments/results/fashion_mnist_fc2.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time


import jax

from tnjax import config_lib
from tnjax.configs import dense_mnist, mr_mnist, tt_mnist
from tnjax.training import trainer

VARIANTS = {
  "tt_rank8": (tt_mnist, "rank=8"),
  "tt_rank2": (tt_mnist, "rank=2"),
  "matrix_rank4": (mr_mnist, "rank=4"),  # 8,192 weights, about TT rank 8's 8,448
  "dense": (dense_mnist, ""),
}


def run(name, epochs, workdir, schedule):
  module, arg = VARIANTS[name]
  config = config_lib.config_of(
    module, ",".join(filter(None, [arg, "fashion_idx", f"epochs={epochs}"]))
  )
  config.progress_bar = False
  if schedule == "cosine":
    config.schedule.update(name="cosine", learning_rate=0.05, end_learning_rate=0.0)
  start = time.time()
  result = trainer.train(config, os.path.join(workdir, name)).result
  layer = config.model.layers.hidden.to_dict()
  return {
    "variant": name,
    "first_layer": layer,
    "test_accuracy": result["test_accuracy"],
    "num_params": result["num_params"],
    "seconds": time.time() - start,
    "schedule": config.schedule.to_dict(),
    "epochs": epochs,
  }


def first_layer_params(name):
  module, arg = VARIANTS[name]
  from flax import nnx
  from tnjax.models import build_model

  config = config_lib.config_of(module, arg)
  model = build_model(config.model, (32, 32, 1), 10, rngs=nnx.Rngs(0))
  return model.hidden.weight_params, model.hidden.compression


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--epochs", type=int, default=30)
  parser.add_argument("--workdir", default="runs/fmnist_fc2")
  parser.add_argument("--schedule", choices=["logspace", "cosine"], default="logspace")
  parser.add_argument("--variants", default=",".join(VARIANTS))
  parser.add_argument("--out", default="experiments/results/fashion_mnist_fc2")
  args = parser.parse_args()
  rows = []
  for name in args.variants.split(","):
    row = run(name, args.epochs, args.workdir, args.schedule)
    row["first_layer_weights"], row["first_layer_compression"] = first_layer_params(name)
    rows.append(row)
    print(json.dumps(row), flush=True)
  machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} {jax.default_backend()}"
  lines = [
    f"# FC-2 on Fashion-MNIST (real data, IDX files), {args.epochs} epochs, {args.schedule} lr"
    + (" 0.05 -> 0" if args.schedule == "cosine" else ""),
    "",
    f"Machine: {machine}. Date: {datetime.date.today()}. Command: "
    f"`python experiments/fashion_mnist_fc2.py --epochs {args.epochs} --schedule {args.schedule}`.",
    "Setting: Novikov et al.'s MNIST recipe (32x32 zero-padded, mean image subtracted, SGD momentum 0.9, "
    "batch 100, weight decay 5e-4). Dataset is Fashion-MNIST, not MNIST: accuracies are not the paper's.",
    "",
    "| first layer | first-layer weights | compression | total params | test accuracy | seconds |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    lines.append(
      f"| {r['variant']} | {r['first_layer_weights']:,} | {r['first_layer_compression']:,.1f} | "
      f"{r['num_params']:,} | {100 * r['test_accuracy']:.2f}% | {r['seconds']:.0f} |"
    )
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out + ".md", "w") as f:
    f.write("\n".join(lines) + "\n")
  with open(args.out + ".json", "w") as f:
    json.dump({"machine": machine, "rows": rows}, f, indent=1)
  print("\n".join(lines))


if __name__ == "__main__":
  main()
