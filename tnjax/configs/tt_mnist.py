r"""Novikov et al. (2015) MNIST: FC-2 with a 1024x1024 TT-layer, modes 4x8x8x4, TT-rank 8.

  python -m tnjax.train --config configs/tt_mnist.py --workdir runs/tt_mnist

Expect about 98% test accuracy on MNIST (the paper's TT-layer curves reach
1.9-2% error at rank 8 with shape 4x8x8x4). Offline, on Debian's Fashion-MNIST:

  python -m tnjax.train --config configs/tt_mnist.py:fashion_idx,epochs=30 --workdir runs/tt_fmnist

reaches about 89% (experiments/results/fashion_mnist_fc2.md).

Figure 1 (`sweep()`): the paper's five shape families x ranks, with the paper's
ranks kept at every bond (`paper_ranks`: the spec's clip_ranks=False), so the
x-axis counts are the paper's (2^10 at rank 8: 2,112 weights; clipped: 1,824).

HashedNet comparison (`hashednet`): both FC-2 layers as TT. The paper gives only
the totals, 12,602 parameters at rank 8 and 7,698 at rank 6 (recalled, PAPERS.md).
The shapes are not published; HASHEDNET_LAYERS is a pair (found by search over
4-mode factorisations) that reaches exactly both totals with biases and clipped
ranks: hidden 4x4x16x4 -> 8x2x8x8, output 4x16x4x4 -> 5x2x1x1.

Arguments (after the ':', comma separated): rank=8, shape=4x8x8x4 (in = out
modes), paper_ranks (no clipping at the boundary bonds), hashednet, epochs=100,
runlocal (seconds-long smoke run), fashion_idx (read Fashion-MNIST IDX files from
/usr/share/datasets/fashion-mnist), synthetic.
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import common

# Figure 1's five shape families of the 1024x1024 layer (in = out modes).
FIGURE1_SHAPES = [(32, 32), (4, 8, 8, 4), (4, 4, 4, 4, 4), (2, 2, 8, 8, 2, 2), (2,) * 10]
FIGURE1_RANKS = (1, 2, 4, 8)
HASHEDNET_LAYERS = {
  "hidden": {"kind": "tt", "in_shape": (4, 4, 16, 4), "out_shape": (8, 2, 8, 8)},
  "output": {"kind": "tt", "in_shape": (4, 16, 4, 4), "out_shape": (5, 2, 1, 1)},
}


def get_config(arg=None):
  args = config_args.parse_arg(
    arg,
    rank=8,
    shape="4x8x8x4",
    paper_ranks=False,
    hashednet=False,
    epochs=100,
    runlocal=False,
    fashion_idx=False,
    synthetic=False,
  )
  modes = tuple(int(m) for m in args.shape.split("x"))
  c = config_schema.base_config()
  common.mnist_fc2_data(c, args)
  c.model.name = "fc2"
  c.model.hidden_features = 1024
  if args.hashednet:
    c.model.layers = {name: {**spec, "ranks": args.rank} for name, spec in HASHEDNET_LAYERS.items()}
  else:
    c.model.layers = {
      "hidden": {"kind": "tt", "ranks": args.rank, "in_shape": modes, "out_shape": modes}
    }
    if args.paper_ranks:
      c.model.layers.hidden.clip_ranks = False
  common.novikov_mnist_training(c, args)
  return c


def sweep():
  """Figure 1: five TT shape families x ranks 1, 2, 4, 8, paper ranks (python -m tnjax.sweep)."""
  return [
    {
      "model.layers.hidden.ranks": r,
      "model.layers.hidden.in_shape": s,
      "model.layers.hidden.out_shape": s,
      "model.layers.hidden.clip_ranks": False,
    }
    for s in FIGURE1_SHAPES
    for r in FIGURE1_RANKS
  ]
