r"""Novikov et al. (2015) matrix-rank baseline: FC-2 with first layer 1024 -> r -> 1024.

  python -m tnjax.train --config configs/mr_mnist.py:rank=8 --workdir runs/mr_mnist

The first layer has 2048 r weights (r=8: 16,384). The paper's Figure 1 puts this
curve above the balanced TT curves at equal size. Arguments: rank=8, epochs=100,
runlocal, fashion_idx, synthetic (as configs/tt_mnist.py).
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import common


def get_config(arg=None):
  args = config_args.parse_arg(
    arg, rank=8, epochs=100, runlocal=False, fashion_idx=False, synthetic=False
  )
  c = config_schema.base_config()
  common.mnist_fc2_data(c, args)
  c.model.name = "fc2"
  c.model.hidden_features = 1024
  c.model.layers = {"hidden": {"kind": "lowrank", "rank": args.rank}}
  common.novikov_mnist_training(c, args)
  return c


def sweep():
  return [{"model.layers.hidden.rank": r} for r in (1, 2, 4, 8, 16, 32)]
