r"""Novikov et al. (2015) CIFAR-10: a small CNN whose fully-connected part is a TT-layer.

  python -m tnjax.train --config configs/tt_cifar10.py --workdir runs/tt_cifar10
  python -m tnjax.train --config configs/tt_cifar10.py:dense --workdir runs/cifar10_cnn

The network (tnjax.models.novikov_cifar.NovikovCNN) follows the MatConvNet CIFAR-10
example net, with fc1 (1,024 x 1,024) as a TT-layer of modes 4x8x8x4 and rank
`rank`. The paper reports that replacing the CNN's fully-connected part by TT-layers
compresses it strongly at a small accuracy cost (its exact numbers were not
retrieved; PAPERS.md section 1). Training: SGD momentum 0.9, cosine lr from 0.05, batch 128.

Arguments: rank=8, dense (fc1 dense), epochs=200, runlocal, synthetic.
"""

from tnjax import config_lib
from tnjax.configs import common

TT_FC1 = {"kind": "tt", "in_shape": (4, 8, 8, 4), "out_shape": (4, 8, 8, 4)}


def get_config(arg=None):
  args = config_lib.parse_arg(arg, rank=8, dense=False, epochs=200, runlocal=False,
                              synthetic=False)
  c = config_lib.base_config()
  common.cifar_data(c, args, "cifar10")
  c.model.name = "novikov_cnn"
  c.model.layers = {"fc1": {"kind": "dense"} if args.dense else {**TT_FC1, "ranks": args.rank}}
  c.num_epochs = args.epochs
  c.batch_size = 128
  c.log_every_steps = 100
  c.optimizer.update(name="sgd", momentum=0.9, weight_decay=5e-4)
  c.schedule.update(name="cosine", learning_rate=0.05, end_learning_rate=0.0)
  if args.runlocal:
    config_lib.shrink_for_smoke_run(c)
  return c


def sweep():
  return [{"model.layers.fc1": {**TT_FC1, "ranks": r}} for r in (1, 2, 4, 8)] + [
      {"model.layers.fc1": {"kind": "dense"}}]
