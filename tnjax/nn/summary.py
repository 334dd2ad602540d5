"""A table of a model's layers: kind, shape, parameters, compression."""

from __future__ import annotations

from flax import nnx

from tnjax.nn.base import CountedModule


def layer_rows(model: nnx.Module) -> list[dict]:
  """One row per tnjax layer or shared generator (a CountedModule)."""
  rows = []
  for path, module in nnx.iter_modules(model):
    if module is model or not isinstance(module, CountedModule):
      continue
    rows.append(
      {
        "name": ".".join(str(p) for p in path),
        "kind": module.spec.kind,
        "shape": module.shape_description,
        "params": module.num_params,
        "weights": module.weight_params,
        "dense_params": module.dense_weight_params + (module.num_params - module.weight_params),
        "compression": module.compression,
      }
    )
  return rows


def total_params(model: nnx.Module) -> int:
  """All trainable parameters of a model."""
  return sum(x.size for x in __import__("jax").tree.leaves(nnx.state(model, nnx.Param)))


def format_table(model: nnx.Module) -> str:
  """Printable table, with whole-model totals and compression."""
  rows = layer_rows(model)
  header = f"{'layer':<28} {'kind':<8} {'shape':<36} {'params':>12} {'compression':>12}"
  lines = [header, "-" * len(header)]
  for r in rows:
    lines.append(
      f"{r['name']:<28} {r['kind']:<8} {r['shape']:<36} {r['params']:>12,} "
      f"{r['compression']:>12,.1f}"
    )
  compressed = [r for r in rows if r["kind"] != "dense"]
  if compressed:  # e.g. Novikov's TT4 TT4 FC: FC6 and FC7 together
    dense_weights = sum(r["dense_params"] - (r["params"] - r["weights"]) for r in compressed)
    weights = sum(r["weights"] for r in compressed)
    lines.append("-" * len(header))
    lines.append(
      f"{'compressed layers (weights)':<28} {'':<8} {', '.join(r['name'] for r in compressed)[:36]:<36} "
      f"{weights:>12,} {dense_weights / weights:>12,.1f}"
    )
  total = total_params(model)
  # Dense equivalent: this model with every tnjax layer replaced by its dense size.
  dense_total = total + sum(r["dense_params"] - r["params"] for r in rows)
  lines.append("-" * len(header))
  lines.append(f"{'total':<28} {'':<8} {'':<36} {total:>12,} {dense_total / total:>12,.2f}")
  return "\n".join(lines)
