r"""Novikov et al. (2015) matrix-rank baseline: FC-2 with first layer 1024 -> r -> 1024.

  python -m tnjax.train --config configs/mr_mnist.py:rank=8 --workdir runs/mr_mnist

The first layer has 2048 r weights (r=8: 16,384). The paper's Figure 1 puts this
curve above the balanced TT curves at equal size. Arguments as configs/tt_mnist.py
plus rank.
"""

from configs import mnist_common


def get_config(arg=None):
  args = mnist_common.parse(arg, rank=8)
  return mnist_common.fc2_config(args, {"kind": "lowrank", "rank": args.rank})


def sweep():
  return [{"model.hidden_layer.rank": r} for r in (1, 2, 4, 8, 16, 32)]
