r"""Novikov et al. (2015) dense baseline: FC-2 with a full 1024x1024 first layer.

  python -m tnjax.train --config configs/dense_mnist.py --workdir runs/dense_mnist

Expect about 98.1% on MNIST (the paper's dense FC-2 has about 1.9% error).
Arguments: epochs=100, runlocal, fashion_idx, synthetic (as configs/tt_mnist.py).
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import common


def get_config(arg=None):
  args = config_args.parse_arg(arg, epochs=100, runlocal=False, fashion_idx=False, synthetic=False)
  c = config_schema.base_config()
  common.mnist_fc2_data(c, args)
  c.model.name = "fc2"
  c.model.hidden_features = 1024
  c.model.layers = {"hidden": {"kind": "dense"}}
  common.novikov_mnist_training(c, args)
  return c
