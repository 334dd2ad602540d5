"""How much each planned layer matters: the validation loss with that layer alone converted
at a ladder of sizes, and the allocation of a weight budget that this table implies.

Equal relative error (budget_lib.allocate_budget) treats a 1% error in the first conv like a
1% error in the classifier. Measuring instead what each conversion costs on held-out data
and solving the resulting multiple-choice knapsack (one size per layer, total weights
within the budget, least summed loss) puts the weights where accuracy needs them.
"""

from __future__ import annotations

import dataclasses
import sys

from flax import nnx

from tnjax import errors
from tnjax.compression import convert, sizing
from tnjax.compression import size_knobs as knobs
from tnjax.compression.plan import PLAN_FIELDS

# Compression ratios of one layer tried when scoring it (each becomes the largest size
# storing at most dense / ratio weights; sizes that repeat or cannot be met are dropped).
LADDER = (1.5, 2, 3, 4, 6, 10, 16, 32, 64, 128, 256)


@dataclasses.dataclass(frozen=True)
class Candidate:
  """One size of one layer and what converting that layer alone to it costs."""

  spec: dict  # the layer spec with its sizes resolved
  weights: int  # stored weights at this size
  loss: float  # validation loss of the model with only this layer converted

  def to_json(self) -> dict:
    return {"spec": self.spec, "weights": self.weights, "loss": self.loss}

  @classmethod
  def from_json(cls, record: dict) -> Candidate:
    spec = {k: tuple(v) if isinstance(v, list) else v for k, v in record["spec"].items()}
    return cls(spec, int(record["weights"]), float(record["loss"]))


def ladder_specs(entry, weight, ladder=LADDER) -> list[dict]:
  """The distinct sizes of `entry`'s format at the ladder's ratios, largest first, with the
  EVBMF ranks (Nakajima et al. 2013) as one more rung for lowrank and tucker layers."""
  plain = {k: v for k, v in entry.spec.items() if k not in PLAN_FIELDS}
  specs = []
  for ratio in ladder:
    try:
      spec = sizing.size_for_ratio(entry, plain, weight.shape, ratio)
    except errors.UserError:  # this format cannot reach that ratio on this layer
      continue
    if spec not in specs:
      specs.append(spec)
  if not specs:
    raise errors.UserError(
      f"{entry.name}: {plain['kind']} has no size that compresses this layer "
      f"{ladder[0]}x or more; choose another format for it."
    )
  rung = sizing.vbmf_rung(entry, plain, weight)
  if rung is not None and rung[0] not in specs:
    # Ratio rungs are largest first; the EVBMF size goes where its weights put it.
    at = sum(knobs.stored_weights(entry, s, weight.shape) > rung[1] for s in specs)
    specs.insert(at, rung[0])
  return specs


def layer_table(model, entries, weights, loss, record=None, *, ladder=LADDER, quiet=False):
  """{layer name: [Candidate, ...]}: each planned layer converted alone at each ladder size,
  the rest of `model` as trained, scored by `loss(model)` (validation data, lower is better).
  With `record` (a search's SearchRecord) each layer's scores are kept as they are made, so
  a search killed while scoring skips, when rerun, the layers it had scored."""
  scored = {} if record is None else record.state.setdefault("scored", {})
  table = {}
  for number, entry in enumerate(entries, 1):
    if entry.name in scored:
      table[entry.name] = [Candidate.from_json(c) for c in scored[entry.name]]
      continue
    candidates = []
    for spec in ladder_specs(entry, weights[entry.name], ladder):
      trial = nnx.clone(model)
      new = convert.build_replacement(entry, spec, weights[entry.name])
      convert.install(trial, entry, new)
      candidates.append(Candidate(spec, int(new.weight_params), float(loss(trial))))
    table[entry.name] = candidates
    if record is not None:
      scored[entry.name] = [c.to_json() for c in candidates]
      record.update()
    if not quiet:
      losses = ", ".join(f"{c.weights:,}: {c.loss:.3f}" for c in candidates)
      print(
        f"  sensitivity {number}/{len(entries)} {entry.name} (weights: loss) {losses}",
        file=sys.stderr,
        flush=True,
      )
  return table


def allocate(table: dict, allowed: float) -> dict:
  """{layer name: Candidate}: one size per layer, total weights <= `allowed`, least summed
  validation loss: the multiple-choice knapsack, solved exactly by carrying the Pareto set
  of partial allocations (fewer weights or lower loss) from layer to layer."""
  names = list(table)
  smallest = sum(min(c.weights for c in table[n]) for n in names)
  if smallest > allowed:
    raise errors.UserError(
      f"no sizes of these formats fit {allowed:,.0f} weights (the smallest tried take "
      f"{smallest:,}); raise the budget."
    )
  # What the layers not yet placed need at least: partial allocations beyond it are dropped.
  rest = [sum(min(c.weights for c in table[m]) for m in names[i + 1 :]) for i in range(len(names))]
  pareto = [(0, 0.0, ())]
  for index, name in enumerate(names):
    grown = sorted(
      (
        (weights + c.weights, loss + c.loss, picks + (c,))
        for weights, loss, picks in pareto
        for c in table[name]
        if weights + c.weights + rest[index] <= allowed
      ),
      key=lambda p: (p[0], p[1]),
    )
    pareto, lowest = [], float("inf")
    for weights, loss, picks in grown:
      if loss < lowest:  # not dominated by a lighter allocation
        pareto.append((weights, loss, picks))
        lowest = loss
  _, _, picks = min(pareto, key=lambda p: (p[1], p[0]))
  return dict(zip(names, picks))
