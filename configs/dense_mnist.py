r"""Novikov et al. (2015) dense baseline: FC-2 with a full 1024x1024 first layer.

  python -m tnjax.train --config configs/dense_mnist.py --workdir runs/dense_mnist

Expect about 98.1% on MNIST (the paper's dense FC-2 has about 1.9% error).
Arguments as configs/tt_mnist.py.
"""

from configs import mnist_common


def get_config(arg=None):
  args = mnist_common.parse(arg)
  return mnist_common.fc2_config(args, {"kind": "dense"})
