"""Plan files: what `python -m tnjax.compress --plan FILE` reads (get_plan() returning a
plan, or {'layers': plan, 'budget': {...}}), and the one-line refusal of such a file's keys
where the Python API takes the budget as an argument."""

from __future__ import annotations

from tnjax import config_lib, errors

PLAN_KEYS = ("layers", "budget")


def read_plan(plan_path: str) -> tuple[dict, dict | None]:
  """(layers plan, budget or None) from a plan file's get_plan(); what the file returns is
  checked here, each entry's spec in compression.plan (resolve_plan)."""
  from tnjax.compression import budget  # pylint: disable=g-import-not-at-top (budget imports plan)

  module, arg = config_lib.load_module(plan_path, entry="get_plan")
  path = plan_path.partition(":")[0]
  with errors.input_errors_are_user_errors():  # (a :arg get_plan does not take: one line too)
    plan = config_lib.call_user_function(path, module.get_plan, *((arg,) if arg else ()))
  if hasattr(plan, "to_dict"):
    plan = plan.to_dict()
  if not isinstance(plan, dict) or not plan:
    raise errors.UserError(
      f"plan file {path}: get_plan() returned {type(plan).__name__} {plan!r:.60}; it must "
      "return a non-empty dict, {layer name or glob: spec} or {'layers': {...}, 'budget': {...}}."
    )
  if "layers" not in plan:
    if isinstance(plan.get("budget"), dict) and "kind" not in plan["budget"]:  # not a layer's
      raise errors.UserError(
        f"plan file {path}: a plan with a 'budget' puts its layer entries under 'layers': "
        "return {'layers': {layer name or glob: spec}, 'budget': {...}}."
      )
    return plan, None
  unknown = sorted(set(plan) - set(PLAN_KEYS))
  if unknown:
    raise errors.UserError(
      f"plan file {path}: a plan with 'layers' takes only {PLAN_KEYS}; remove {unknown}."
    )
  layers = plan["layers"].to_dict() if hasattr(plan["layers"], "to_dict") else plan["layers"]
  if not isinstance(layers, dict):
    raise errors.UserError(f"plan file {path}: 'layers' must be a dict, got {layers!r:.60}.")
  budget_entry = plan.get("budget")
  if budget_entry is not None:
    budget.check_budget(budget_entry)
  return dict(layers), budget_entry


def check_no_file_keys(plan: dict, layer_names, call: str) -> None:
  """A plan-file dict ({'layers': ..., 'budget': ...}) passed where a layers plan goes (and
  naming no layer of the model): one line showing the Python `call` instead."""
  file_keys = [k for k in PLAN_KEYS if k in plan and k not in layer_names]
  if file_keys:
    raise errors.UserError(
      f"plan key {file_keys[0]!r} belongs to a plan file's {{'layers': ..., 'budget': ...}}; "
      f"from Python call {call}."
    )
