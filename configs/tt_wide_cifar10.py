r"""Novikov et al. (2015) wide-and-shallow CIFAR-10 net: 3072 -> 262,144 -> 4,096 -> 10 in TT.

  python -m tnjax.train --config configs/tt_wide_cifar10.py --workdir runs/tt_wide

Two TT-layers (rank 3) with BatchNorm, ReLU and dropout 0.4 (tnjax.models.
novikov_cifar.WideTTNet); as dense layers they would hold 1.88e9 weights. The
paper reports 31.47% test error (recalled; a public TF re-run reached 68-71%
accuracy; PAPERS.md section 1). Training: configs/cifar_common.py, Adam here as in
the public re-runs.

Arguments: rank=3, epochs=100, runlocal, synthetic.
"""

from configs import cifar_common
from tnjax.models import novikov_cifar


def get_config(arg=None):
  args = cifar_common.parse(arg, rank=3)
  layers = {"fc1": {**novikov_cifar.WIDE_HIDDEN, "ranks": args.rank},
            "fc2": {**novikov_cifar.WIDE_SECOND, "ranks": args.rank}}
  if arg is None or "epochs=" not in arg:
    args.epochs = 100
  c = cifar_common.cifar_config(args, "cifar10", {"name": "wide_tt", "layers": layers})
  c.data.augment = ""  # a fully-connected net: no crops
  c.optimizer.update(name="adam", weight_decay=0.0)
  c.schedule.update(name="cosine", learning_rate=1e-3)
  return c
