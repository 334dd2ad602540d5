r"""Novikov et al. (2015) CIFAR-10 (section 6.2): CIFAR-10 Quick with a TT fully-connected part.

  python -m tnjax.train --config configs/tt_cifar10.py --workdir runs/tt_cifar10
  python -m tnjax.train --config configs/tt_cifar10.py:dense --workdir runs/cifar10_quick

The network (tnjax.models.novikov_cifar.NovikovCNN) is the convolutional part of
Caffe's CIFAR-10 Quick. The TT version replaces Quick's fully-connected part by a
1,024 x 3,125 TT-layer (modes 4^5 -> 5^5, rank 8: 4,160 weights, 769x fewer than
the dense 1,024 x 3,125) -> ReLU -> 3,125 x 10; `dense` is Quick's own
1,024 -> 64 -> 10 (no ReLU between). The paper reports 23.13% test error for the
TT version against 23.25% for the dense baseline (recalled, PAPERS.md).

Inputs: `gcn_zca` (the default) applies global contrast normalisation and ZCA
whitening fitted on the train split, as the paper did; the fitted arrays are saved
in the workdir (preprocessing.npz). `gcn_zca=False` standardises per channel.
Training: SGD momentum 0.9, weight decay 5e-4, cosine lr from 0.05, batch 128
(the paper's schedule was not retrieved).

Arguments: rank=8, dense (Quick's own FC part), gcn_zca=True, epochs=200, runlocal,
synthetic.
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import common

TT_FC1 = {"kind": "tt", "in_shape": (4, 4, 4, 4, 4), "out_shape": (5, 5, 5, 5, 5)}


def get_config(arg=None):
  args = config_args.parse_arg(
    arg, rank=8, dense=False, gcn_zca=True, epochs=200, runlocal=False, synthetic=False
  )
  c = config_schema.base_config()
  common.cifar_data(c, args, "cifar10")
  if args.gcn_zca:
    c.data.whiten = "gcn_zca"
  c.model.name = "novikov_cnn"
  if args.dense:  # Caffe's CIFAR-10 Quick: 1,024 -> 64 -> 10
    c.model.update(hidden_features=64, hidden_relu=False)
    c.model.layers = {"fc1": {"kind": "dense"}}
  else:
    c.model.update(hidden_features=3125, hidden_relu=True)
    c.model.layers = {"fc1": {**TT_FC1, "ranks": args.rank}}
  common.cifar_cosine_training(c, args)
  return c


def sweep():
  """TT ranks 1, 2, 4, 8 of the 1,024 x 3,125 layer (run the dense baseline with `dense`)."""
  return [{"model.layers.fc1": {**TT_FC1, "ranks": r}} for r in (1, 2, 4, 8)]
