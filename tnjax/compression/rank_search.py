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
import json
import statistics
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from tnjax import errors, fileio
from tnjax.compression import budget as budget_lib
from tnjax.compression import convert, sensitivity
from tnjax.compression.plan import resolve_plan
from tnjax.nn import registry

# Total compression of the planned layers at which the front is drawn: 2^(k/3), 1.26x..256x
# (steps of 26% so that a latency budget lands within about 10% of a front point).
FRONT = tuple(round(2 ** (k / 3), 3) for k in range(1, 25))
RECORD = "search.json"


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
    return _markdown(self)


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
  """The model within `budget` (budget_lib.BUDGET_USAGE), measured on `validation`; see the
  module docstring. `workdir` (local or gs://) keeps every measurement for a resume."""
  budget_lib.check_budget(budget)
  _check_validation(budget, validation)
  source = nnx.clone(model)
  entries = resolve_plan(source, plan)
  budget_lib.check_budget_entries(entries)
  weights = {e.name: jnp.asarray(e.layer.to_dense()) for e in entries}
  record = _Record(workdir, plan, budget)

  def say(text: str) -> None:
    if not quiet:
      print(f"  search: {text}", file=sys.stderr, flush=True)

  if "table" not in record.state:
    table = sensitivity.layer_table(source, entries, weights, validation.loss, quiet=quiet)
    record.update(table={n: [c.to_json() for c in cs] for n, cs in table.items()})
  table = _table(record.state)
  if "source" not in record.state:
    facts = {"weights": sum(e.layer.dense_weight_params for e in entries)}
    facts["loss"] = float(validation.loss(source))
    if validation.accuracy is not None:
      facts["accuracy"] = float(validation.accuracy(source))
    record.update(source=facts)
  facts = record.state["source"]

  if "params" in budget or "ratio" in budget:
    choice = sensitivity.allocate(table, budget_lib.allowed_weights(entries, budget))
    chosen = _point({n: c.spec for n, c in choice.items()}, table)
    front = [chosen]
  else:
    front = _front(table, facts["weights"])
    if "accuracy_drop" in budget:
      chosen = _smallest_within_drop(source, front, budget, validation, facts, record, say)
    else:
      chosen = _most_accurate_in_time(source, front, budget, validation, record, say)
  small, rows = convert.compress_model(source, chosen["specs"], example_input=example_input)
  measured = record.state.get("measured", {})
  front = [{**p, **measured.get(_key(p["specs"]), {})} for p in front]
  result = SearchResult(
    small,
    rows,
    dict(budget),
    facts,
    front,
    {**chosen, **measured.get(_key(chosen["specs"]), {})},
    sum("accuracy" in m for m in measured.values()),
    validation.finetune_epochs,
  )
  if workdir is not None:
    directory = fileio.workdir_path(workdir)
    fileio.write_text(directory / "search.md", result.markdown())
    try:
      plot_front(result, directory / "search_front.png")
    except errors.UserError as missing:  # the core has no matplotlib: the table is there
      say(f"no front plot: {missing}")
  return result


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


def _key(specs: dict) -> str:
  return json.dumps(specs, sort_keys=True)


def _point(specs: dict, table: dict) -> dict:
  """A front point: per-layer specs, their total weights and summed sensitivity loss."""
  by_spec = {(n, _key(c.spec)): c for n, cs in table.items() for c in cs}
  chosen = [by_spec[(n, _key(s))] for n, s in specs.items()]
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
  return [{**p, **measured.get(_key(p["specs"]), {})} for p in front]


def _front(table: dict, dense: int) -> list[dict]:
  """The sensitivity allocation at each FRONT ratio (distinct ones), smallest first."""
  points = {}
  for ratio in FRONT:
    try:
      choice = sensitivity.allocate(table, dense / ratio)
    except errors.UserError:  # smaller than these formats go
      break
    point = _point({n: c.spec for n, c in choice.items()}, table)
    points.setdefault(_key(point["specs"]), point)
  return sorted(points.values(), key=lambda p: p["weights"])


def _forward(validation):
  return validation.forward or (lambda model, x: model(x))


def _compiled(model, validation, batch: int):
  """(jitted forward of `model` in eval mode, its state, an input of `batch` examples)."""
  copy = nnx.clone(model)
  if hasattr(copy, "eval"):
    copy.eval()
  graphdef, state = nnx.split(copy)
  forward = _forward(validation)
  step = jax.jit(lambda s, x: forward(nnx.merge(graphdef, s), x))
  example = jnp.asarray(validation.example_input)[:1]
  return step, state, jnp.repeat(example, batch, axis=0)


def latency_ms(model, validation, batch: int = 1, repeats: int = 30) -> float:
  """Median milliseconds of one jitted forward pass at `batch` on this device."""
  step, state, x = _compiled(model, validation, batch)
  for _ in range(3):
    jax.block_until_ready(step(state, x))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(step(state, x))
    times.append(1000 * (time.perf_counter() - start))
  return statistics.median(times)


def flops(model, validation) -> float:
  """XLA's FLOP count of one forward pass on one example."""
  step, state, x = _compiled(model, validation, 1)
  analysis = step.lower(state, x).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis["flops"])


def _build(source, point, fit=True):
  return convert.compress_model(source, point["specs"], fit=fit)[0]


def _measure_front(source, front, record, key: str, measure) -> list[float]:
  """`measure(model)` of every front point ('flops', a latency), each measured once (kept
  in the record); the values in front order. Speed and FLOPs do not depend on the values
  of the weights, so each model is built at its format's initialisation, not fitted."""
  for point in front:
    if key not in record.state.get("measured", {}).get(_key(point["specs"]), {}):
      record.measure(_key(point["specs"]), **{key: measure(_build(source, point, fit=False))})
  return [record.state["measured"][_key(p["specs"])][key] for p in front]


def _finetuned_accuracy(source, point, validation, record, say, best) -> float:
  key = _key(point["specs"])
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
    counts = _measure_front(source, front, record, "flops", lambda m: flops(m, validation))
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
  measure = lambda m: latency_ms(m, validation, batch)  # noqa: E731
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


class _Record:
  """search.json in the workdir: the plan, budget and every measurement, rewritten whole
  (atomically) after each, so that a killed search resumes; in memory without a workdir."""

  def __init__(self, workdir, plan, budget):
    self.path = None if workdir is None else fileio.workdir_path(workdir) / RECORD
    self.state = {"plan": plan, "budget": budget}
    if self.path is not None and self.path.exists():
      saved = fileio.read_json(self.path)
      if _key(saved.get("plan")) != _key(plan) or _key(saved.get("budget")) != _key(budget):
        raise errors.UserError(
          f"{self.path} holds a search for plan {saved.get('plan')} and budget "
          f"{saved.get('budget')}; give a new workdir for this one."
        )
      self.state = saved

  def update(self, **fields) -> None:
    self.state.update(fields)
    if self.path is not None:
      fileio.write_json(self.path, self.state)

  def measure(self, key: str, **values) -> None:
    measured = self.state.setdefault("measured", {})
    measured[key] = {**measured.get(key, {}), **values}
    self.update()


def _markdown(result: SearchResult) -> str:
  source = result.source
  lines = [
    f"# Search: budget {result.budget}",
    "",
    f"Source: {source['weights']:,} weights in the planned layers, validation loss "
    f"{source['loss']:.4f}"
    + (f", accuracy {100 * source['accuracy']:.2f}%" if "accuracy" in source else "")
    + ".",
    "",
    "## Chosen",
    "",
    "| layer | format | sizes | weights before | after | compression |",
    "|---|---|---|---:|---:|---:|",
  ]
  for row in result.rows:
    fields = registry.spec_class(row["format"]).size_fields
    sizes = ", ".join(f"{k}={row['spec'][k]}" for k in fields if k in row["spec"])
    lines.append(
      f"| {row['name']} | {row['format']} | {sizes} | {row['weights_before']:,} | "
      f"{row['weights_after']:,} | {row['compression']:.1f}x |"
    )
  epochs = (
    f" ({result.finetunes * result.finetune_epochs:g} epochs)" if (result.finetune_epochs) else ""
  )
  lines += [
    "",
    f"Search cost: {result.finetunes} fine-tune(s){epochs}. Target "
    + ("met." if result.chosen.get("met", True) else "NOT met: the largest model tried."),
    "",
    "## Front",
    "",
    "| weights | compression | summed sensitivity loss | FLOPs | latency ms | val. accuracy | chosen |",
    "|---:|---:|---:|---:|---:|---:|---|",
  ]
  for point in result.front:
    latency = next((v for k, v in point.items() if k.startswith("latency_ms")), None)
    lines.append(
      f"| {point['weights']:,} | {source['weights'] / point['weights']:.1f}x | "
      f"{point['sensitivity_loss']:.3f} | {_cell(point.get('flops'), '{:,.0f}')} | "
      f"{_cell(latency, '{:.3f}')} | {_cell(point.get('accuracy'), '{:.2%}')} | "
      f"{'yes' if point['specs'] == result.chosen['specs'] else ''} |"
    )
  return "\n".join(lines) + "\n"


def plot_front(result: SearchResult, path) -> None:
  """Validation accuracy (where fine-tuned) and summed sensitivity loss against weights of
  every front model, and latency where measured; the chosen one marked."""
  from tnjax import extras  # pylint: disable=g-import-not-at-top

  extras.require("matplotlib", "the search's front plot")
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  front = result.front
  latency_key = next((k for p in front for k in p if k.startswith("latency_ms")), None)
  panels = 2 + (latency_key is not None)
  figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
  weights = [p["weights"] for p in front]
  axes[0].plot(weights, [p["sensitivity_loss"] for p in front], "o-", color="C0")
  axes[0].set_ylabel("summed validation loss (layers alone)")
  tried = [p for p in front if "accuracy" in p]
  axes[1].plot([p["weights"] for p in tried], [100 * p["accuracy"] for p in tried], "s", color="C1")
  if "accuracy" in result.source:
    axes[1].axhline(100 * result.source["accuracy"], color="gray", ls="--", label="source")
    if "accuracy_drop" in result.budget:
      need = 100 * result.source["accuracy"] - result.budget["accuracy_drop"]
      axes[1].axhline(need, color="red", ls=":", label="source - accuracy_drop")
    axes[1].legend(fontsize=7)
  axes[1].set_ylabel("validation accuracy after fine-tuning (%)")
  if latency_key is not None:
    axes[2].plot(weights, [p.get(latency_key) for p in front], "o-", color="C2")
    axes[2].axhline(result.budget.get("latency_ms", float("nan")), color="gray", ls="--")
    axes[2].set_ylabel(f"forward ms ({latency_key.split('_')[-1]})")
  for axis in axes:
    axis.set_xscale("log")
    axis.set_xlabel("weights of the planned layers")
    axis.axvline(result.chosen["weights"], color="red", lw=0.8)
  figure.suptitle(f"budget {result.budget}: chosen {result.chosen['weights']:,} weights (red)")
  figure.tight_layout()
  with fileio.Path(path).open("wb") as out:
    figure.savefig(out, format="png", dpi=110)
  plt.close(figure)


def _cell(value, form: str) -> str:
  return "-" if value is None else form.format(value)
