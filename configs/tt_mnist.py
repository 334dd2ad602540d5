r"""Novikov et al. (2015) MNIST: FC-2 with a 1024x1024 TT-layer, modes 4x8x8x4, TT-rank 8.

  python -m tnjax.train --config configs/tt_mnist.py --workdir runs/tt_mnist

Expect about 98% test accuracy on MNIST (the paper's TT-layer curves reach
1.9-2% error at rank 8 with shape 4x8x8x4). Offline, on Debian's Fashion-MNIST:

  python -m tnjax.train --config configs/tt_mnist.py:fashion_idx,epochs=30 --workdir runs/tt_fmnist

reaches about 89% (experiments/results/fashion_mnist_fc2.md).

Arguments (after the ':', comma separated): rank=8, shape=4x8x8x4 (in = out
modes), epochs=100, runlocal (seconds-long smoke run), fashion_idx (read
Fashion-MNIST IDX files from /usr/share/datasets/fashion-mnist), synthetic.
"""

from configs import mnist_common


def get_config(arg=None):
  args = mnist_common.parse(arg, rank=8, shape="4x8x8x4")
  modes = tuple(int(m) for m in args.shape.split("x"))
  layer = {"kind": "tt", "ranks": args.rank, "in_shape": modes, "out_shape": modes}
  return mnist_common.fc2_config(args, layer)


def sweep():
  """Novikov Figure 1: TT shapes x ranks (run with python -m tnjax.sweep)."""
  return [{"model.hidden_layer.ranks": r, "model.hidden_layer.in_shape": s,
           "model.hidden_layer.out_shape": s}
          for s in [(4, 8, 8, 4), (4, 4, 4, 4, 4), (2, 2, 2, 2, 2, 2, 2, 2, 2, 2)]
          for r in (1, 2, 4, 8)]
