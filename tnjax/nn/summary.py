"""A table of a model's layers: kind, shape, parameters, compression, execution path."""

from __future__ import annotations

import jax
from flax import nnx

from tnjax.nn.base import CountedModule
from tnjax.tensor import execution


def traced_layers(model: nnx.Module, example_input) -> execution.Record:
  """Paths chosen and input shapes seen per tnjax layer (keyed by id) for `example_input`.

  `example_input` is an array or a jax.ShapeDtypeStruct (batch included). Only
  shapes are traced (jax.eval_shape on a copy in eval mode): nothing is computed
  and the model is not touched.
  """
  graphdef, state = nnx.split(model)
  originals = [module for _, module in nnx.iter_modules(model)]
  found = execution.Record()

  def forward(state, x):
    copy = nnx.merge(graphdef, state)
    copy.eval()
    with execution.record() as log:
      copy(x)
    # The copy's modules come in the same order as the model's.
    for original, (_, module) in zip(originals, nnx.iter_modules(copy)):
      if id(module) in log.paths:
        found.paths[id(original)] = log.paths[id(module)]
      if id(module) in log.inputs:
        found.inputs[id(original)] = log.inputs[id(module)]
    return 0

  jax.eval_shape(forward, state, jax.ShapeDtypeStruct(example_input.shape, example_input.dtype))
  return found


def execution_paths(model: nnx.Module, example_input) -> dict[int, str]:
  """{id(layer): path} that tnjax.tensor.execution chooses for an input like `example_input`."""
  return traced_layers(model, example_input).paths


def layer_rows(model: nnx.Module, example_input=None) -> list[dict]:
  """One row per tnjax layer or shared generator (a CountedModule).

  With `example_input` each row also has 'path': the execution path chosen for it.
  """
  paths = execution_paths(model, example_input) if example_input is not None else {}
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
        "path": paths.get(id(module), "-"),
      }
    )
  return rows


def total_params(model: nnx.Module) -> int:
  """All trainable parameters of a model."""
  return sum(x.size for x in __import__("jax").tree.leaves(nnx.state(model, nnx.Param)))


def format_table(model: nnx.Module, example_input=None) -> str:
  """The model's layers as a printable table, with whole-model totals and compression.

  Args:
    model: any NNX module.
    example_input: an array or ShapeDtypeStruct (batch included); given, a 'path'
      column says how each layer runs at that shape ('factored' or 'dense').

  Returns:
    The table as text.
  """
  if not isinstance(model, nnx.Module):
    raise ValueError(f"format_table takes an NNX module, got {type(model).__name__}.")
  rows = layer_rows(model, example_input)
  header = f"{'layer':<28} {'kind':<8} {'shape':<36} {'params':>12} {'compression':>12}"
  if example_input is not None:
    header += f" {'path':>9}"
  lines = [header, "-" * len(header)]
  for r in rows:
    line = (
      f"{r['name']:<28} {r['kind']:<8} {r['shape']:<36} {r['params']:>12,} "
      f"{r['compression']:>12,.1f}"
    )
    lines.append(line + (f" {r['path']:>9}" if example_input is not None else ""))
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
