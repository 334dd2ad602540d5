"""Plans of the rank-search study (issue 33): LeNet-5's conv2 as Tucker-2 and its fully
connected layers as low rank, sized by one whole-model budget.

  python -m tnjax.compress --from RUN --plan experiments/plans/by_budget.py:ratio=10 ...
  ...:ratio=10,allocate=sensitivity     # the same weights, shared by measured sensitivity
  ...:drop=1.0                          # the smallest within 1 point (validation)
  ...:latency=0.5                       # the most accurate within 0.5 ms at batch 1
"""

from tnjax import config_args


def get_plan(arg=None):
  args = config_args.parse_arg(arg, ratio=0.0, allocate="equal_error", drop=-1.0, latency=0.0)
  if args.ratio:
    budget = {"ratio": args.ratio, "allocate": args.allocate}
  elif args.drop >= 0:
    budget = {"accuracy_drop": args.drop}
  else:
    budget = {"latency_ms": args.latency, "batch": 1}
  return {"layers": {"conv2": {"kind": "tucker"}, "fc*": {"kind": "lowrank"}}, "budget": budget}
