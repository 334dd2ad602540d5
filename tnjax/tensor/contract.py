"""Einsum with a contraction order planned once per static shape.

`jnp.einsum` asks opt_einsum for a path every time it is traced. A layer is
traced once per jit, but eager calls, benchmarks and `jax.eval_shape` re-trace;
caching the plan keyed on (equation, shapes) makes planning a one-off.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax.numpy as jnp
import opt_einsum


@functools.lru_cache(maxsize=4096)
def plan_path(equation: str, shapes: tuple[tuple[int, ...], ...],
              strategy: str = "optimal") -> tuple[tuple[int, ...], ...]:
  """Contraction path (pairs of operand positions) minimising FLOPs."""
  # 'optimal' is exhaustive; beyond ~8 operands it explodes, so fall back to 'dp'.
  if strategy == "optimal" and len(shapes) > 8:
    strategy = "dp"
  path, _ = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=strategy)
  return tuple(tuple(step) for step in path)


def path_info(equation: str, *shapes: Sequence[int], strategy: str = "optimal"):
  """opt_einsum's report (FLOPs, largest intermediate) for a planned contraction."""
  shapes = tuple(tuple(s) for s in shapes)
  path = plan_path(equation, shapes, strategy)
  _, info = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=list(path))
  return info


def planned_einsum(equation: str, *operands, precision: Any = None,
                   preferred_element_type: Any = None, strategy: str = "optimal"):
  """`jnp.einsum` using a cached, FLOP-optimal contraction path."""
  shapes = tuple(tuple(op.shape) for op in operands)
  path = plan_path(equation, shapes, strategy)
  return jnp.einsum(equation, *operands, optimize=list(path), precision=precision,
                    preferred_element_type=preferred_element_type)
