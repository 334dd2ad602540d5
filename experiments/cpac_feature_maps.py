r"""Feature maps of a trained CPAC-Conv network, ordered by CP-component significance.

  apt-get install dataset-fashion-mnist     # IDX files in /usr/share/datasets/fashion-mnist
  python experiments/cpac_feature_maps.py --rank 4 --epochs 2 --workdir runs/cpac_maps
  python experiments/cpac_feature_maps.py --run runs/cpac_fast/03_rank=4_seed=0

Trains (or resumes) configs/cpac_mnist.py with `rank=R,fast,fashion_idx`, or takes the
finished CPAC run given by --run; loads it with `tnjax.load`, then draws, for one test
image, the R maps each CP layer produces after its spatial filters
(`CPConv.feature_maps`), most significant component first. conv1 is read as the
authors read it (`--reading in_factor`): its in-channel factor holds one
signed value per component, ordered by magnitude; `--reading norms` uses the
product of the component's four factor-column norms (the magnitude of its rank-1
kernel term) instead, which is also how conv2 (8 input channels) is read. Writes
experiments/results/cpac_feature_maps.png. The committed figure: `--run` of the rank-4
run of the CPAC sweep (experiments/results/cpac_rank_fashion_mnist.md: two-conv, `fast`,
10 epochs, seed 0, Fashion-MNIST test accuracy 85.76%), conv1 read by in-channel factor,
test image 0.
"""

from __future__ import annotations

import argparse
import os


import jax
import numpy as np
from flax import nnx

import report_lib

from tnjax.configs import cpac_mnist
from tnjax import fileio
from tnjax.training import run_files, trainer
from tnjax import data as data_lib
from tnjax.compression import runs
from tnjax.tensor import rank_components


def layer_rows(model, image):
  """(name, CP feature maps (H', W', R), layer) of both CP layers for one image."""
  first_maps = model.conv1.feature_maps(image[None])[0]
  hidden = jax.nn.relu(nnx.max_pool(model.conv1(image[None]), (2, 2), strides=(2, 2)))
  second_maps = model.conv2.feature_maps(hidden)[0]
  return [("conv1", first_maps, model.conv1), ("conv2", second_maps, model.conv2)]


def plot_feature_maps(image, rows, path: str, reading: str = "in_factor") -> None:
  """One row per CP layer: the input image, then its R maps by descending significance
  (conv1 by `reading`, the others by factor norms)."""
  rank = max(maps.shape[-1] for _, maps, _ in rows)
  plt = report_lib.pyplot()
  fig, axes = plt.subplots(
    len(rows), rank + 1, figsize=(1.6 * (rank + 1), 1.9 * len(rows)), squeeze=False
  )
  for axis_row, (name, maps, layer) in zip(axes, rows):
    how = reading if layer.in_channels == 1 else "norms"
    significance = np.asarray(layer.significance(how))
    order = np.asarray(rank_components(layer.weights(), how))
    axis_row[0].imshow(np.asarray(image[..., 0]), cmap="gray")
    axis_row[0].set_title(f"image ({name} row)", fontsize=8)
    for column, component in enumerate(order, start=1):
      feature = np.asarray(maps[..., component])
      limit = np.abs(feature).max() or 1.0  # zero in the middle of the diverging colours
      axis_row[column].imshow(feature, cmap="RdBu_r", vmin=-limit, vmax=limit)
      axis_row[column].set_title(f"r={component}  s={significance[component]:.2f}", fontsize=8)
    for axis in axis_row:
      axis.set_xticks([])
      axis.set_yticks([])
  fig.suptitle(
    f"CP feature maps, most significant first (conv1: s = {reading}; conv2: product of "
    "factor norms)",
    fontsize=9,
  )
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rank", type=int, default=4)
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--source", default="fashion_idx", choices=["fashion_idx", "synthetic"])
  parser.add_argument("--image", type=int, default=0, help="index of the test image drawn")
  parser.add_argument("--workdir", default="runs/cpac_feature_maps")
  parser.add_argument("--run", default=None, help="a finished CPAC run to draw (no training)")
  parser.add_argument("--reading", default="in_factor", choices=["in_factor", "norms"])
  parser.add_argument(
    "--out", default=os.path.join(os.path.dirname(__file__), "results", "cpac_feature_maps.png")
  )
  args = parser.parse_args()
  if not args.run:
    config = cpac_mnist.get_config(f"rank={args.rank},fast,{args.source},epochs={args.epochs}")
    config.progress_bar = False
    trainer.train(config, args.workdir)
  run = args.run or args.workdir
  model, config = runs.load(run)
  result = fileio.read_json(fileio.workdir_path(run) / run_files.RESULT) or {}
  dataset = data_lib.load_dataset(config.data)
  image = dataset.test_images[args.image]
  plot_feature_maps(image, layer_rows(model, image), args.out, args.reading)
  print(f"test accuracy {result.get('test_accuracy', float('nan')):.4f}; wrote {args.out}")


if __name__ == "__main__":
  report_lib.run_main(main)
