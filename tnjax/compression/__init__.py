"""Compressing trained networks: plans, sizing by error / ratio / budget, and loading runs.

>>> import tnjax
>>> from tnjax.compression import compress_model
>>> model, config = tnjax.load("runs/x")  # a finished FC-2 run with a 1024x1024 TT layer
>>> small, rows = compress_model(model, {"hidden": {"kind": "tt", "ranks": 4}})
>>> rows[0]["weights_before"], rows[0]["weights_after"]
(8448, 2176)

The programs `python -m tnjax.compress`, `tnjax.evaluate` and `tnjax.export` are thin
command lines over this package.
"""

from tnjax.compression.convert import compress_model, layer_report  # noqa: F401
from tnjax.compression.linen import compress_linen  # noqa: F401
from tnjax.compression.plan import PlanEntry, layers_of, resolve_plan  # noqa: F401
from tnjax.compression.rank_search import SearchResult, Validation, search  # noqa: F401
from tnjax.compression.runs import Predictor, load, load_config_of, load_predict  # noqa: F401
from tnjax.compression.budget import allocate_budget  # noqa: F401
from tnjax.compression.sizing import size_spec  # noqa: F401
