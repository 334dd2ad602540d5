r"""Tensor sketching (Kasiviswanathan, Narodytska & Jin 2018) of LeNet-5 on MNIST.

  python -m tnjax.train --config configs/sketch_mnist.py:k=8 --workdir runs/sketch_k8
  python -m tnjax.sweep --config configs/sketch_mnist.py --workdir runs/sketch_mnist

conv2 (5x5, 6 -> 16), fc1 (400 -> 120) and fc2 (120 -> 84) are sketched (SK-CONV /
SK-FC, l = 1 sketch pair, sizes k for the FCs and conv_k for conv2); conv1 (one
input channel: nothing to sketch) and the classifier stay dense. The paper's own
MNIST network is not published; LeNet-5 is the standard MNIST CNN of the
compression literature. The paper compares sketches with Tucker and TT at matched
compression in error-vs-compression curves (PAPERS.md, recalled: no numbers to quote).

Arguments: method=sketch|tucker_tt|dense (tucker_tt: Tucker-2 conv + TT FCs with
the sketch's per-layer parameter counts), k=8, conv_k=1, epochs=10, runlocal,
fashion_idx, synthetic. sweep(): 3 compression rates x (sketch, Tucker/TT with at
least the sketch's weights) for conv+FC and for conv2 alone; l = 1, 2, 4 sketch
pairs at one budget; dense.
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import common, sketch_common

# Compressible layers of LeNet-5 on 28x28 inputs.
LAYER_DIMS = {
  "conv2": ("conv", (5, 5, 6, 16)),
  "fc1": ("dense", (400, 120)),
  "fc2": ("dense", (120, 84)),
}
RATES = ((4, 1), (8, 1), (16, 2))  # (FC sketch size k, conv sketch size): ~18x, 9.5x, 4.8x
# l sketch pairs of size k / l: the same weights as l = 1 at (16, 4).
SKETCH_COUNTS = ((1, 16, 4), (2, 8, 2), (4, 4, 1))


def get_config(arg=None):
  args = config_args.parse_arg(
    arg,
    method="sketch",
    k=8,
    conv_k=1,
    epochs=10,
    runlocal=False,
    fashion_idx=False,
    synthetic=False,
  )
  c = config_schema.base_config()
  common.mnist_data(c, args)
  c.model.name = "lenet5"
  c.model.layers = sketch_common.layer_specs(args.method, LAYER_DIMS, args.k, args.conv_k)
  c.num_epochs = args.epochs
  c.batch_size = 64
  c.optimizer.update(name="adam", weight_decay=0.0)
  c.schedule.update(name="cosine", learning_rate=2e-3)
  c.log_every_steps = 200
  if args.runlocal:
    config_schema.shrink_for_smoke_run(c)
  return c


def sweep():
  return sketch_common.sweep_points(LAYER_DIMS, RATES, SKETCH_COUNTS)
