"""Where a rank search stands, read from its files (`python -m tnjax.compress --status`):
the budget, whether each layer is scored, the candidates fine-tuned and the one it would
choose so far, and each candidate's fine-tuning run as `tnjax.sweep --status` shows runs."""

from __future__ import annotations

from tnjax import errors, fileio
from tnjax.compression.rank_search import RECORD
from tnjax.compression.run_search import SEARCH_DIR
from tnjax.training import run_files


def search_status(workdir) -> str:
  """The status lines of the search in `workdir` (a compress run's workdir, or the
  workdir given to `tnjax.compression.search`)."""
  directory = fileio.workdir_path(workdir)
  if not directory.exists():
    raise errors.UserError(f"--workdir {directory} does not exist; give a compress run's workdir.")
  if (directory / SEARCH_DIR / RECORD).exists():
    directory = directory / SEARCH_DIR
  if not (directory / RECORD).exists():
    raise errors.UserError(
      f"{directory} holds no rank search (no {RECORD}); give the --workdir of a compress "
      "run whose plan has a measured budget (accuracy_drop, latency_ms, allocate)."
    )
  state = fileio.read_json(directory / RECORD)
  lines = [f"search: budget {state.get('budget')}  ({directory})"]
  table = state.get("table")
  lines.append(
    f"layers scored: {len(table)}, {sum(map(len, table.values()))} sizes"
    if table
    else "layers scored: not yet (each layer's sizes are being scored on validation data)"
  )
  source = state.get("source") or {}
  if "accuracy" in source:
    lines.append(
      f"source: {source['weights']:,} weights, validation accuracy {100 * source['accuracy']:.2f}%"
    )
  tried = [m for m in (state.get("measured") or {}).values() if "accuracy" in m]
  line = f"candidates fine-tuned: {len(tried)}"
  if tried:
    line += "; " + _best_so_far(tried, state.get("budget") or {}, source)
  lines.append(line)
  finished = (directory / "search.md").exists()
  lines.append(f"finished: {directory / 'search.md'}" if finished else "finished: not yet")
  runs = sorted(p for p in directory.iterdir() if p.name.startswith("finetune_"))
  if runs:
    rows = [run_files.describe(run) for run in runs]
    lines.append(run_files.status_table(rows, accuracy="val acc"))
  return "\n".join(lines)


def _best_so_far(tried: list[dict], budget: dict, source: dict) -> str:
  """What the search would choose among the candidates fine-tuned so far: under an
  accuracy-drop budget the smallest within the drop, otherwise the most accurate."""

  def describe(m: dict) -> str:
    weights = f" at {m['weights']:,} weights" if "weights" in m else ""
    return f"{100 * m['accuracy']:.2f}% validation accuracy{weights}"

  if "accuracy_drop" in budget and "accuracy" in source:
    floor = source["accuracy"] - budget["accuracy_drop"] / 100
    within = [m for m in tried if m["accuracy"] >= floor and "weights" in m]
    if within:
      return "smallest within the drop so far: " + describe(min(within, key=lambda m: m["weights"]))
    return (
      "none within the drop yet (the most accurate: "
      + describe(max(tried, key=lambda m: m["accuracy"]))
      + ")"
    )
  return "most accurate so far: " + describe(max(tried, key=lambda m: m["accuracy"]))
