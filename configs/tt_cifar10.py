r"""Novikov et al. (2015) CIFAR-10: a small CNN whose fully-connected part is a TT-layer.

  python -m tnjax.train --config configs/tt_cifar10.py --workdir runs/tt_cifar10
  python -m tnjax.train --config configs/tt_cifar10.py:dense --workdir runs/cifar10_cnn

The network (tnjax.models.novikov_cifar.NovikovCNN) follows the MatConvNet CIFAR-10
example net, with fc1 (1,024 x 1,024) as a TT-layer of modes 4x8x8x4 and rank
`rank`. The paper reports that replacing the CNN's fully-connected part by TT-layers
compresses it strongly at a small accuracy cost (its exact numbers were not
retrieved; PAPERS.md section 1). Training: configs/cifar_common.py.

Arguments: rank=8, dense (fc1 dense), epochs=200, runlocal, synthetic.
"""

from configs import cifar_common


def get_config(arg=None):
  args = cifar_common.parse(arg, rank=8, dense=False)
  fc1 = ({"kind": "dense"} if args.dense else
         {"kind": "tt", "ranks": args.rank, "in_shape": (4, 8, 8, 4), "out_shape": (4, 8, 8, 4)})
  return cifar_common.cifar_config(args, "cifar10", {"name": "novikov_cnn", "layers": {"fc1": fc1}})


def sweep():
  return [{"model.layers": {"fc1": {"kind": "tt", "ranks": r, "in_shape": (4, 8, 8, 4),
                                    "out_shape": (4, 8, 8, 4)}}} for r in (1, 2, 4, 8)] + [
      {"model.layers": {"fc1": {"kind": "dense"}}}]
