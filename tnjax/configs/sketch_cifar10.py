r"""Tensor sketching (Kasiviswanathan, Narodytska & Jin 2018) of a CIFAR-10 CNN.

  python -m tnjax.train --config configs/sketch_cifar10.py:k=32,conv_k=4 --workdir runs/sk_c10
  python -m tnjax.sweep --config configs/sketch_cifar10.py --workdir runs/sketch_cifar10

The network is tnjax.models.small_cnn (the Keras CIFAR-10 example CNN: conv32,
conv32, pool, conv64, conv64, pool, FC512, with dropout; the paper's CIFAR-10 net
is not published). conv2..conv4 and fc1 are sketched (l = 1, sizes conv_k and k);
conv1 (3 input channels) and the classifier stay dense. The paper reports
error-vs-compression curves with Tucker / TT at matched compression (no table to
quote; PAPERS.md). The dense net reaches about 79% on CIFAR-10 in 50 epochs.

Arguments: method=sketch|tucker_tt|dense, k=32, conv_k=4, epochs=50, runlocal,
synthetic. sweep(): 3 compression rates x (sketch, matched Tucker/TT) + dense.
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import common, sketch_common

LAYER_DIMS = {
  "conv2": ("conv", (3, 3, 32, 32)),
  "conv3": ("conv", (3, 3, 32, 64)),
  "conv4": ("conv", (3, 3, 64, 64)),
  "fc1": ("dense", (2304, 512)),
}
RATES = ((16, 2), (32, 4), (64, 8))
SKETCH_COUNTS = ((1, 32, 4), (2, 16, 2), (4, 8, 1))  # l k fixed: one budget


def get_config(arg=None):
  args = config_args.parse_arg(
    arg, method="sketch", k=32, conv_k=4, epochs=50, runlocal=False, synthetic=False
  )
  c = config_schema.base_config()
  common.cifar_data(c, args, "cifar10", augment="")
  c.model.name = "small_cnn"
  c.model.layers = sketch_common.layer_specs(args.method, LAYER_DIMS, args.k, args.conv_k)
  c.num_epochs = args.epochs
  c.batch_size = 128
  c.optimizer.update(name="adam", weight_decay=0.0)
  c.schedule.update(name="cosine", learning_rate=1e-3)
  c.log_every_steps = 100
  if args.runlocal:
    config_schema.shrink_for_smoke_run(c)
  return c


def sweep():
  return sketch_common.sweep_points(LAYER_DIMS, RATES, SKETCH_COUNTS)
