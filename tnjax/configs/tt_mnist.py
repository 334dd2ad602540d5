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

from tnjax import config_lib
from tnjax.configs import common


def get_config(arg=None):
  args = config_lib.parse_arg(arg, rank=8, shape="4x8x8x4", epochs=100, runlocal=False,
                              fashion_idx=False, synthetic=False)
  modes = tuple(int(m) for m in args.shape.split("x"))
  c = config_lib.base_config()
  common.mnist_fc2_data(c, args)
  c.model.name = "fc2"
  c.model.hidden_features = 1024
  c.model.layers = {"hidden": {"kind": "tt", "ranks": args.rank, "in_shape": modes,
                               "out_shape": modes}}
  c.num_epochs = args.epochs
  c.batch_size = 100
  # Novikov's MNIST training: SGD momentum 0.9, lr log-spaced 1e-2 -> 1e-5 over 45 epochs, then held.
  c.optimizer.update(name="sgd", momentum=0.9, weight_decay=5e-4)
  c.schedule.update(name="logspace", learning_rate=1e-2, end_learning_rate=1e-5,
                    decay_epochs=min(45, args.epochs))
  if args.runlocal:
    config_lib.shrink_for_smoke_run(c)
  return c


def sweep():
  """Novikov Figure 1: TT shapes x ranks (run with python -m tnjax.sweep)."""
  return [{"model.layers.hidden.ranks": r, "model.layers.hidden.in_shape": s,
           "model.layers.hidden.out_shape": s}
          for s in [(4, 8, 8, 4), (4, 4, 4, 4, 4), (2, 2, 2, 2, 2, 2, 2, 2, 2, 2)]
          for r in (1, 2, 4, 8)]
