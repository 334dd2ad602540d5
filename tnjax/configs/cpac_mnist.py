r"""CPAC-Conv (Wang, Guo & Yue 2021): the paper's MNIST CNN with CP-decomposed convs.

  python -m tnjax.train --config configs/cpac_mnist.py:rank=5 --workdir runs/cpac_r5

Faithful to the authors' code: N = 8 channels, CPAC convs without bias whose
factors start as a CP-ALS of a random kernel randn / (kh kw) (`variance_init`
instead draws the factors so the kernel has the Glorot variance), Adam 1e-4,
batch size 1, inputs in [-1, 1]. The authors keep the best-test-epoch model;
result.json reports its accuracy (best_test_accuracy, best_epoch) beside the last
epoch's (the checkpoints hold the last epochs, not the best one). The paper reports on MNIST: CNN 98.44%; CPAC R=1 92.78%, R=2 96.79%,
R=3 97.74%, R=5 98.05%, R=9 98.30%, R=12 98.42%. Batch 1 is slow (60,000 steps an
epoch); the `fast` argument switches to batch 64 with Adam 3e-3, the documented
variant for sweeps.

Arguments: rank=4, dense (the CNN baseline: plain convs without bias), fast,
variance_init, single_conv (the paper's second sweep: one conv layer), epochs=10,
runlocal, fashion_idx, synthetic.
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import common


def get_config(arg=None):
  args = config_args.parse_arg(
    arg,
    rank=4,
    dense=False,
    fast=False,
    variance_init=False,
    single_conv=False,
    epochs=10,
    runlocal=False,
    fashion_idx=False,
    synthetic=False,
  )
  c = config_schema.base_config()
  common.mnist_data(c, args, scale="symmetric")
  c.model.name = "cpac_cnn"
  c.model.channels = 8
  c.model.hidden_features = 50
  c.model.convs = 1 if args.single_conv else 2
  c.model.conv_layer = (
    {"kind": "dense", "use_bias": False}
    if args.dense
    else {
      "kind": "cp",
      "rank": args.rank,
      "use_bias": False,
      "factor_init": "variance" if args.variance_init else "cp_als",
    }
  )
  c.num_epochs = args.epochs
  c.optimizer.name = "adam"
  c.schedule.update(name="constant", learning_rate=1e-4)
  c.batch_size = 1
  c.log_every_steps = 1000
  if args.fast:
    c.batch_size = 64
    c.schedule.learning_rate = 3e-3
    c.log_every_steps = 100
  if args.runlocal:
    config_schema.shrink_for_smoke_run(c)
  return c


def sweep():
  """The paper's rank sweep (run with the `fast` argument for speed); with
  `single_conv`, points 0-5 are its second sweep, R = 1..6."""
  return [{"model.conv_layer.rank": r} for r in range(1, 13)]
