"""Whole-model budgets: {'params': N} / {'ratio': R} met from the weights alone (one
relative error for every planned layer, found by bisection), and the checks of every
budget form, including those the rank search meets by measuring (rank_search.py)."""

from __future__ import annotations

import sys

from tnjax import config_lib, errors
from tnjax.compression import progress as progress_lib
from tnjax.compression import size_knobs as knobs
from tnjax.compression import sizing
from tnjax.compression.plan import PLAN_FIELDS, SIZE_TARGETS


def allocate_budget(entries, weights: dict, budget) -> dict[str, dict]:
  """Sizes for the planned layers so that their weights together stay within `budget`.

  `budget` is {'params': N} (stored weights of the planned layers, biases aside) or
  {'ratio': R} (their dense weights / R). The rule: one relative error for every layer
  (the 'equal relative error' allocation), the smallest the budget allows, found by
  bisection; each layer then takes the smallest size that reaches it. Layers must not
  give their own sizes, only their format.
  """
  check_budget(budget)
  if needs_search(budget):
    raise errors.UserError(
      f"budget {budget} is met by measuring candidates on validation data: pass "
      "validation=tnjax.compression.Validation(...) to tnjax.compress (see "
      "tnjax.compression.search)."
    )
  check_budget_entries(entries)
  _check_error_sizable(entries)
  allowed = allowed_weights(entries, budget)
  check_budget_shrinks(entries, allowed, budget)
  with progress_lib.warnings_summarised(f"budget {budget}"):
    return _allocate(entries, weights, budget, allowed)


BUDGET_USAGE = (
  "a budget is {'params': N} (N >= 1 weights) or {'ratio': R} (R > 1), either with "
  "'allocate': 'equal_error' (the default) or 'sensitivity'; or {'accuracy_drop': D} "
  "(points, optional 'by': 'params' or 'flops'); or {'latency_ms': T, 'batch': B}"
)
_BUDGET_KEYS = {
  "params": ("allocate",),
  "ratio": ("allocate",),
  "accuracy_drop": ("by",),
  "latency_ms": ("batch",),
}


def check_budget_entries(entries) -> None:
  """Under a budget the plan names formats only: a size in an entry (which the budget would
  override) is one line naming it."""
  for entry in entries:
    fields = (*knobs.spec_class(entry, entry.spec).size_fields, *SIZE_TARGETS)
    given = [f for f in fields if f in entry.spec]
    if given:
      sizes = ", ".join(f"{f}={entry.spec[f]}" for f in given)
      raise errors.UserError(
        f"{entry.name}: a budget sizes every planned layer, so its entry takes only a format; "
        f"remove {sizes}, or drop the budget."
      )


def _check_error_sizable(entries) -> None:
  """An equal-error budget sizes layers by their fit error, which a trained-only format
  (ADTN) does not have: one line saying how to plan it beside the budget."""
  for entry in entries:
    if not knobs.spec_class(entry, entry.spec).error_sizable:
      kind = entry.spec["kind"]
      raise errors.UserError(
        f"{entry.name}: {kind} weights are trained, not fitted, so an equal-error budget "
        f"cannot size them; compress it first in a plan of its own ({{'kind': {kind!r}, "
        "'ratio': 4}), then the other layers under the budget; or measure: "
        "{'ratio': R, 'allocate': 'sensitivity'}."
      )


def plain_budget(budget):
  """The budget with NumPy / JAX scalars as Python numbers (`{'params': np.prod(...)}`)."""
  if not isinstance(budget, dict):
    return budget
  return {k: config_lib.plain_number(v) for k, v in budget.items()}


def check_budget(budget) -> None:
  """A budget in one of the forms of BUDGET_USAGE; anything else is one line."""
  main = [k for k in _BUDGET_KEYS if isinstance(budget, dict) and k in budget]
  if not isinstance(budget, dict) or len(main) != 1:
    raise errors.UserError(f"{BUDGET_USAGE}; got {budget!r}.")
  (key,) = main
  extra = sorted(set(budget) - {key, *_BUDGET_KEYS[key]})
  if extra:
    raise errors.UserError(f"{BUDGET_USAGE}; remove {extra} from {budget!r}.")
  value = budget[key]
  number = config_lib.is_number(value)
  wrong = {
    "params": lambda: not (number and value >= 1 and float(value).is_integer()),
    "ratio": lambda: not (number and value > 1),
    "accuracy_drop": lambda: not (number and value >= 0),
    "latency_ms": lambda: not (number and value > 0),
  }[key]()
  if wrong:
    need = {
      "params": "a whole number >= 1",
      "ratio": "a number above 1",
      "accuracy_drop": "a number of points >= 0",
      "latency_ms": "a number of milliseconds above 0",
    }[key]
    raise errors.UserError(f"{BUDGET_USAGE}; {key}={value!r} is not {need}.")
  choices = {"allocate": ("equal_error", "sensitivity"), "by": ("params", "flops")}
  for field, allowed in choices.items():
    if field in budget and budget[field] not in allowed:
      raise errors.UserError(f"budget {field}={budget[field]!r} must be one of {allowed}.")
  batch = budget.get("batch", 1)
  if key == "latency_ms" and not (
    isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1
  ):
    raise errors.UserError(f"budget batch={batch!r} must be a whole number >= 1.")


def needs_search(budget) -> bool:
  """Whether the budget is met by measuring models on validation data (compression.search)
  rather than from the weights alone."""
  return (
    budget.get("allocate") == "sensitivity" or "accuracy_drop" in budget or ("latency_ms" in budget)
  )


def stored_now(entries) -> int | None:
  """What the planned layers store now when they are already compressed (fewer weights than
  dense); None for dense layers, which any budget may size."""
  now = sum(e.layer.weight_params for e in entries)
  return now if now < sum(e.layer.dense_weight_params for e in entries) else None


def check_budget_shrinks(entries, allowed: float, budget) -> None:
  """Refuses a budget that compresses nothing (at least the planned layers' dense weights)
  or would let already-compressed layers grow: `params` and `ratio` count against the
  dense weights, so a budget written for a dense model would grow a compressed one."""
  dense = sum(e.layer.dense_weight_params for e in entries)
  if allowed >= dense:
    raise errors.UserError(
      f"budget {budget} allows the planned layers {allowed:,.0f} weights, not fewer than "
      f"their dense {dense:,}: it would compress nothing. Give fewer weights (`params`) or "
      "a `ratio` above 1."
    )
  now = stored_now(entries)
  if now is not None and allowed > now:
    raise errors.UserError(
      f"budget {budget} allows the planned layers {allowed:,.0f} weights, more than the "
      f"{now:,} they store now (they are already compressed); the plan would grow the "
      "model. Give a smaller budget."
    )


def front_not_growing(front: list[dict], now: int | None, budget) -> list[dict]:
  """The front points that store no more than already-compressed layers store now (all of
  them for dense layers): a measured budget chooses among smaller models, never larger."""
  if now is None or not front:
    return front
  kept = [p for p in front if p["weights"] <= now]
  if not kept:
    raise errors.UserError(
      f"budget {budget}: the planned layers are already compressed to {now:,} weights and "
      f"every candidate stores more (the smallest {front[0]['weights']:,}); plan a "
      "smaller format, or compress the dense model instead."
    )
  return kept


def allowed_weights(entries, budget) -> float:
  """The stored weights a {'params'} / {'ratio'} budget allows the planned layers."""
  dense = sum(e.layer.dense_weight_params for e in entries)
  return int(budget["params"]) if "params" in budget else dense / float(budget["ratio"])


def _allocate(entries, weights: dict, budget, allowed: float) -> dict[str, dict]:
  plain = {e.name: {k: v for k, v in e.spec.items() if k not in PLAN_FIELDS} for e in entries}
  progress = progress_lib.Progress(f"budget {budget}")
  fitted = {e.name: {} for e in entries}  # each layer's fit error per size, fitted once
  shape = {e.name: weights[e.name].shape for e in entries}
  smallest = {e.name: knobs.with_knob(e, plain[e.name], 1, shape[e.name]) for e in entries}
  smallest_weights = {
    e.name: knobs.stored_weights(e, smallest[e.name], shape[e.name]) for e in entries
  }
  floor = sum(smallest_weights.values())
  if floor > allowed:
    raise errors.UserError(
      f"no sizes of these formats fit {allowed:,.0f} weights (the smallest take {floor:,}); "
      + (
        f"lower the ratio to at most {allowed * float(budget['ratio']) / floor:.1f}."
        if "ratio" in budget
        else "raise the budget."
      )
    )
  # No layer can take more than the budget leaves once the others are at their smallest:
  # the size searches stop there, instead of fitting sizes no allocation could use.
  share = {
    e.name: max(
      1,
      knobs.largest_storing(
        e, plain[e.name], shape[e.name], allowed - floor + smallest_weights[e.name]
      ),
    )
    for e in entries
  }

  def sizes_at(error):
    """Each layer's smallest size within `error`; None when some layer cannot reach it."""
    sizes = {}
    for e in entries:
      sizes[e.name] = sizing.size_for_error(
        e,
        plain[e.name],
        weights[e.name],
        error,
        allow_growth=bool(e.spec.get("allow_growth")),
        clamp=True,
        largest=share[e.name],
        quiet=True,
        fitted_errors=fitted[e.name],
      )
      if sizes[e.name] is None:
        progress.step(f"relative error {error:.4f}: {e.name} cannot reach it within the budget")
        return None
    progress.step(f"relative error {error:.4f}: {total(sizes):,} weights (allowed {allowed:,.0f})")
    return sizes

  def total(sizes):
    return sum(knobs.stored_weights(e, sizes[e.name], shape[e.name]) for e in entries)

  def fits(sizes):
    return sizes is not None and total(sizes) <= allowed

  low, high = 0.0, 0.999
  best = sizes_at(high)
  if not fits(best):  # a layer's smallest size misses even this error
    print(
      f"  budget {budget}: no common relative error below 0.999 fits {allowed:,.0f} weights; "
      f"every planned layer takes its smallest size ({floor:,}).",
      file=sys.stderr,
    )
    return {e.name: knobs.settled(e, smallest[e.name], shape[e.name]) for e in entries}
  for _ in range(12):  # 2^-12 of the error range
    middle = (low + high) / 2
    sizes = sizes_at(middle)
    if fits(sizes):
      high, best = middle, sizes
    else:
      low = middle
  return best
