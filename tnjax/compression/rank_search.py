"""Sizes chosen by measuring the model on held-out data: the budgets a user states in
their own terms (an accuracy drop, a latency) and weight budgets shared by sensitivity.

  result = search(model, {"conv*": {"kind": "tucker"}, "fc*": {"kind": "lowrank"}},
                  {"accuracy_drop": 0.5}, Validation(loss, accuracy, finetune))
  result.model, result.rows, print(result.markdown())  # (README: "Choosing the ranks")

1. Each planned layer is converted alone at a ladder of sizes and scored by the
   validation loss (compression.sensitivity.layer_table).
2. A weight budget ({'params'} / {'ratio'} with 'allocate': 'sensitivity') is shared out
   by that table (sensitivity.allocate): no fine-tuning.
3. Otherwise the table gives a front: the best allocation at each of a ladder of total
   sizes. `accuracy_drop` bisects it for the smallest model (by weights, or by XLA's FLOP
   count) whose fine-tuned validation accuracy is within the drop of the source's;
   `latency_ms` times every front model's forward pass on this device and fine-tunes the
   largest ones that fit, keeping the most accurate.

Every measurement is written to `workdir` (search.json) as it is made, so a killed search
rerun with the same arguments goes on where it stopped. The returned model is converted,
not fine-tuned: fine-tune it with the loop the search used (and only then look at the
test split).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable

import jax.numpy as jnp
from flax import nnx

from tnjax import errors, fileio
from tnjax.compression import budget as budget_lib
from tnjax.compression import convert, model_cost, search_record, search_report, sensitivity
from tnjax.compression.plan import resolve_plan

# Total compression of the planned layers at which the front is drawn: 2^(k/3), 1.26x..256x
# (steps of 26% so that a latency budget lands within about 10% of a front point).
FRONT = tuple(round(2 ** (k / 3), 3) for k in range(1, 25))
RECORD = search_record.RECORD


@dataclasses.dataclass
class Validation:
  """The user's held-out data and loop, as the search measures candidates with them.

  loss: model -> validation loss (data held out of the training set, never the test set).
  accuracy: model -> validation accuracy in [0, 1] (accuracy_drop and latency_ms budgets).
  finetune: model -> fine-tuned model, the user's own short loop (it may train in place).
  example_input: a batch of inputs; latency and FLOPs are measured on its first example.
  forward: (model, x) -> outputs, what latency and FLOPs time (default: model(x)).
  finetune_epochs: what one `finetune` call costs in epochs (the report's search cost).
  """

  loss: Callable[[nnx.Module], float]
  accuracy: Callable[[nnx.Module], float] | None = None
  finetune: Callable[[nnx.Module], nnx.Module] | None = None
  example_input: Any = None
  forward: Callable | None = None
  finetune_epochs: float | None = None
  settings: dict | None = None  # what else the measurements depend on: a resume must match


@dataclasses.dataclass
class SearchResult:
  model: nnx.Module  # the chosen sizes, converted from the source (not fine-tuned)
  rows: list  # one report row per compressed layer (as tnjax.compress gives)
  budget: dict
  source: dict  # the source's weights (planned layers), validation loss and accuracy
  front: list  # every candidate model considered, with what was measured of it
  chosen: dict  # the front point (or allocation) returned
  finetunes: int  # fine-tunes the search ran (this call and the ones it resumed)
  finetune_epochs: float | None

  def markdown(self) -> str:
    return search_report.markdown(self)


def search(
  model,
  plan: dict,
  budget: dict,
  validation: Validation,
  *,
  workdir=None,
  example_input=None,
  quiet=False,
) -> SearchResult:
  """The model within `budget`, its sizes chosen by measuring on `validation` (the module
  docstring says how).

  Args:
    model: the trained source model (not changed).
    plan: layer name or glob -> a format ({'kind': ...}); the search chooses the sizes.
    budget: one of budget_lib.BUDGET_USAGE's forms.
    validation: a Validation (loss, and for accuracy and latency budgets accuracy,
      finetune and example_input).
    workdir: local or gs:// directory keeping every measurement, so a rerun resumes.
    example_input: an input whose batch decides each layer's execution path.
    quiet: print nothing.

  Returns:
    A SearchResult: the converted (not fine-tuned) model, its report rows, the front
    it chose from, and `.markdown()`.
  """
  budget_lib.check_budget(budget)
  _check_validation(budget, validation)
  source = nnx.clone(model)
  entries = resolve_plan(source, plan)
  budget_lib.check_budget_entries(entries)
  weights = {e.name: jnp.asarray(e.layer.to_dense()) for e in entries}
  record = search_record.SearchRecord(workdir, plan, budget, weights, validation.settings)

  def say(text: str) -> None:
    if not quiet:
      print(f"  search: {text}", file=sys.stderr, flush=True)

  table, facts = _measure_layers_and_source(source, entries, weights, validation, record, quiet)

  if "params" in budget or "ratio" in budget:
    allowed = budget_lib.allowed_weights(entries, budget)
    budget_lib.check_budget_shrinks(entries, allowed, budget)
    choice = sensitivity.allocate(table, allowed)
    chosen = _point({n: c.spec for n, c in choice.items()}, table)
    front = [chosen]
  else:
    front = budget_lib.front_not_growing(
      _front(table, facts["weights"]), budget_lib.stored_now(entries), budget
    )
    if "accuracy_drop" in budget:
      chosen = _smallest_within_drop(source, front, budget, validation, facts, record, say)
    else:
      chosen = _most_accurate_in_time(source, front, budget, validation, record, say)
  small, rows = convert.compress_model(source, chosen["specs"], example_input=example_input)
  measured = record.state.get("measured", {})
  finetunes = sum("accuracy" in m for m in measured.values())
  front, chosen = [_with_measured(p, measured) for p in front], _with_measured(chosen, measured)
  result = SearchResult(
    small, rows, dict(budget), facts, front, chosen, finetunes, validation.finetune_epochs
  )
  if workdir is not None:
    directory = fileio.workdir_path(workdir)
    fileio.write_text(directory / "search.md", result.markdown())
    try:
      search_report.plot_front(result, directory / "search_front.png")
    except errors.UserError as missing:  # the core has no matplotlib: the table is there
      say(f"no front plot: {missing}")
  return result


def _measure_layers_and_source(source, entries, weights, validation, record, quiet):
  """(sensitivity table, source facts), each measured once and kept in the record."""
  if "table" not in record.state:
    table = sensitivity.layer_table(source, entries, weights, validation.loss, record, quiet=quiet)
    record.update(table={n: [c.to_json() for c in cs] for n, cs in table.items()})
  if "source" not in record.state:
    facts = {"weights": sum(e.layer.dense_weight_params for e in entries)}
    facts["loss"] = float(validation.loss(source))
    if validation.accuracy is not None:
      facts["accuracy"] = float(validation.accuracy(source))
    record.update(source=facts)
  return _table(record.state), record.state["source"]


def _check_validation(budget, validation) -> None:
  need = ["loss"]
  if "accuracy_drop" in budget or "latency_ms" in budget:
    need += ["accuracy", "finetune"]
  if "latency_ms" in budget or budget.get("by") == "flops":
    need += ["example_input"]
  missing = [n for n in need if getattr(validation, n, None) is None]
  if not isinstance(validation, Validation) or missing:
    raise errors.UserError(
      f"budget {budget} measures candidates: give validation=Validation(...) with "
      f"{', '.join(need)} (missing: {', '.join(missing) or 'a Validation'})."
    )


def _point(specs: dict, table: dict) -> dict:
  """A front point: per-layer specs, their total weights and summed sensitivity loss."""
  by_spec = {(n, search_record.key(c.spec)): c for n, cs in table.items() for c in cs}
  chosen = [by_spec[(n, search_record.key(s))] for n, s in specs.items()]
  return {
    "specs": specs,
    "weights": sum(c.weights for c in chosen),
    "sensitivity_loss": sum(c.loss for c in chosen),
  }


def _table(state: dict) -> dict:
  return {n: [sensitivity.Candidate.from_json(c) for c in cs] for n, cs in state["table"].items()}


def recorded_front(state: dict) -> list[dict]:
  """The front of a measured-budget search from its record (WORKDIR/search.json), each point
  with what the search measured of it (e.g. its fine-tuned validation `accuracy`)."""
  measured = state.get("measured", {})
  front = _front(_table(state), state["source"]["weights"])
  return [_with_measured(p, measured) for p in front]


def _with_measured(point: dict, measured: dict) -> dict:
  """A front point with what the search measured of it (fine-tuned accuracy, latency)."""
  return {**point, **measured.get(search_record.key(point["specs"]), {})}


def _front(table: dict, dense: int) -> list[dict]:
  """The sensitivity allocation at each FRONT ratio (distinct ones), smallest first."""
  points = {}
  for ratio in FRONT:
    try:
      choice = sensitivity.allocate(table, dense / ratio)
    except errors.UserError:  # smaller than these formats go
      break
    point = _point({n: c.spec for n, c in choice.items()}, table)
    points.setdefault(search_record.key(point["specs"]), point)
  return sorted(points.values(), key=lambda p: p["weights"])


def _build(source, point, fit=True):
  return convert.compress_model(source, point["specs"], fit=fit)[0]


def _measure_front(source, front, record, key: str, measure) -> list[float]:
  """`measure(model)` of every front point ('flops', a latency), each measured once (kept
  in the record); the values in front order. Speed and FLOPs do not depend on the values
  of the weights, so each model is built at its format's initialisation, not fitted."""
  for point in front:
    if key not in record.state.get("measured", {}).get(search_record.key(point["specs"]), {}):
      record.measure(
        search_record.key(point["specs"]), **{key: measure(_build(source, point, fit=False))}
      )
  return [record.state["measured"][search_record.key(p["specs"])][key] for p in front]


def _finetuned_accuracy(source, point, validation, record, say, best) -> float:
  key = search_record.key(point["specs"])
  known = record.state.get("measured", {}).get(key, {})
  if "accuracy" not in known:
    model = validation.finetune(_build(source, point))
    record.measure(key, accuracy=float(validation.accuracy(model)), weights=point["weights"])
    known = record.state["measured"][key]
  say(
    f"{point['weights']:,} weights: validation accuracy {100 * known['accuracy']:.2f}% "
    f"after fine-tuning{best(known['accuracy'])}"
  )
  return known["accuracy"]


def _smallest_within_drop(source, front, budget, validation, facts, record, say) -> dict:
  """Bisects the front (ordered by weights or FLOPs) for the smallest point whose
  fine-tuned validation accuracy is within budget['accuracy_drop'] points of the source's."""
  by = budget.get("by", "params")
  if by == "flops":
    counts = _measure_front(
      source, front, record, "flops", lambda m: model_cost.flops(m, validation)
    )
    front = [p for _, p in sorted(zip(counts, front), key=lambda cp: cp[0])]
  need = facts["accuracy"] - budget["accuracy_drop"] / 100
  note = lambda a: f" (need >= {100 * need:.2f}%: {'met' if a >= need else 'not met'})"  # noqa: E731
  low, high = 0, len(front) - 1
  if _finetuned_accuracy(source, front[high], validation, record, say, note) < need:
    say(
      f"no front model is within {budget['accuracy_drop']} points of the source's "
      f"{100 * facts['accuracy']:.2f}%; returning the largest tried"
    )
    return {**front[high], "met": False}
  while low < high:
    middle = (low + high) // 2
    if _finetuned_accuracy(source, front[middle], validation, record, say, note) >= need:
      high = middle
    else:
      low = middle + 1
  return {**front[high], "met": True}


def _most_accurate_in_time(source, front, budget, validation, record, say, tries: int = 2):
  """The most accurate (fine-tuned, on validation) of the `tries` largest front points whose
  forward pass at budget['batch'] takes at most budget['latency_ms'] on this device."""
  limit, batch = budget["latency_ms"], budget.get("batch", 1)
  measure = lambda m: model_cost.latency_ms(m, validation, batch)  # noqa: E731
  timed = list(
    zip(front, _measure_front(source, front, record, f"latency_ms_batch{batch}", measure))
  )
  fitting = [p for p, ms in timed if ms <= limit]
  if not fitting:
    fastest = min(ms for _, ms in timed)
    raise errors.UserError(
      f"latency_ms={limit:g} at batch {batch}: the fastest candidate takes {fastest:.3f} ms "
      "on this device; raise the budget or choose faster formats."
    )
  say(f"{len(fitting)} of {len(front)} front models fit {limit:g} ms at batch {batch}")
  best = {"accuracy": -1.0}
  for point in sorted(fitting, key=lambda p: -p["weights"])[:tries]:
    accuracy = _finetuned_accuracy(source, point, validation, record, say, lambda a: "")
    if accuracy > best["accuracy"]:
      best = {**point, "accuracy": accuracy, "met": True}
  return best
