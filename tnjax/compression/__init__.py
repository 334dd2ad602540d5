"""Compressing trained networks: plans, sizing by error / ratio / budget, and loading runs.

  model, config = tnjax.load("runs/fc2_dense")
  small, rows = compress_model(model, {"hidden": {"kind": "tt", "error": 0.3}})

The programs `python -m tnjax.compress`, `tnjax.evaluate` and `tnjax.export` are thin
command lines over this package.
"""

from tnjax.compression.convert import compress_model, layer_report  # noqa: F401
from tnjax.compression.plan import PlanEntry, resolve_plan  # noqa: F401
from tnjax.compression.runs import Predictor, load, load_config_of, load_predict  # noqa: F401
from tnjax.compression.sizing import allocate_budget, size_spec  # noqa: F401
