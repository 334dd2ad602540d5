"""What reads runs written by older tnjax versions; the config's renamed and added
fields are schema facts and live beside base_config (tnjax.config_lib).

Checkpoints written before the state's trees were named (tnjax <= stop 14) keep
the (model, optimizer) pair under "0" and "1"; the checkpointer reads those as named.
"""

from __future__ import annotations

NAMED = ("model", "optimizer")
POSITIONAL = ("0", "1")


def is_positional(tree) -> bool:
  return set(map(str, tree)) == set(POSITIONAL)


def positional_state(tree) -> dict:
  """{"model": m, "optimizer": o} -> {"0": m, "1": o} (a restore target for an old checkpoint)."""
  return {old: tree[new] for old, new in zip(POSITIONAL, NAMED)}


def named_state(tree) -> dict:
  """{"0": m, "1": o} -> {"model": m, "optimizer": o}."""
  return {new: tree[old] for old, new in zip(POSITIONAL, NAMED)}
