"""Compression plans of the compress study: a network's large layers in one family of formats,
each at one compression ratio (dense weights / stored weights).

  python -m tnjax.compress --from RUN --plan experiments/plans/by_ratio.py:net=fc2,kind=tt,ratio=50 ...

net: fc2 (its 1024x1024 hidden layer) or lenet5 (conv2, fc1, fc2). kind: tt, cp, sketch,
or lowrank (LeNet-5's conv2 then takes Tucker-2, the conv form of a low-rank product).
"""

from tnjax import config_args

CONV_KIND = {"tt": "tt", "cp": "cp", "sketch": "sketch", "lowrank": "tucker"}


def get_plan(arg=None):
  args = config_args.parse_arg(arg, net="fc2", kind="tt", ratio=10.0)
  if args.net == "fc2":
    return {"hidden": {"kind": args.kind, "ratio": args.ratio}}
  return {
    "conv2": {"kind": CONV_KIND[args.kind], "ratio": args.ratio},
    "fc*": {"kind": args.kind, "ratio": args.ratio},
  }
