r"""Novikov et al. (2015) wide-and-shallow CIFAR-10 net: 3072 -> 262,144 -> 4,096 -> 10 in TT.

  python -m tnjax.train --config configs/tt_wide_cifar10.py --workdir runs/tt_wide

Two TT-layers (rank 3, no biases: each feeds a BatchNorm) with BatchNorm, ReLU
and dropout 0.4 (tnjax.models.novikov_cifar.WideTTNet); as dense layers they
would hold 1.88e9 weights. The paper reports 31.47% test error (recalled; a
public TF re-run reached 68-71% accuracy; PAPERS.md section 1). Training as in
that re-run's code: plain SGD (no momentum, no weight decay), batch 100, lr 0.06
multiplied by 0.64 every 2,000 steps, 40k steps (80 epochs of 500 steps).

Arguments: rank=3, epochs=80, runlocal, synthetic.
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import common
from tnjax.models import novikov_cifar


def get_config(arg=None):
  args = config_args.parse_arg(arg, rank=3, epochs=80, runlocal=False, synthetic=False)
  c = config_schema.base_config()
  common.cifar_data(c, args, "cifar10", augment="")  # a fully-connected net: no crops
  c.model.name = "wide_tt"
  c.model.layers = {
    "fc1": {**novikov_cifar.WIDE_HIDDEN, "ranks": args.rank},
    "fc2": {**novikov_cifar.WIDE_SECOND, "ranks": args.rank},
  }
  c.num_epochs = args.epochs
  c.batch_size = 100
  c.log_every_steps = 100
  c.optimizer.update(name="sgd", momentum=0.0, weight_decay=0.0)
  c.schedule.update(name="step", learning_rate=0.06, decay_steps=2000, decay_rate=0.64)
  if args.runlocal:
    config_schema.shrink_for_smoke_run(c)
  return c
