"""The files a run's workdir holds, named once, and the run's state read from them.

The trainer writes them, sweeps read them to decide what to run, and the report
scripts and `tnjax.load` read them back. Every path goes through tnjax.fileio.
"""

from __future__ import annotations

from tnjax import fileio
from tnjax.training import run_lock

CONFIG = "config.json"  # the run's config, readable without Orbax
RESULT = "result.json"  # written when the run finishes; its presence means "finished"
DIVERGED = "diverged.json"  # the loss became non-finite; why, and the last good checkpoint
METRICS = "metrics.jsonl"  # one record per log step and per evaluation
CHECKPOINTS = "checkpoints"  # Orbax steps, each holding the state and the config
HISTORY = "config_history.jsonl"  # accepted config changes (--allow_config_change)
PREPROCESSING = "preprocessing.npz"  # arrays fitted on the train split (mean image, ZCA, ...)
INPUT_PIPELINE = "input_pipeline.json"  # the eval pipeline's input contract and steps
POINT = "point.json"  # a sweep point's index, config and overrides
FAILED = "failed.json"  # a sweep point that failed with a problem to fix, and its one line
COMPRESS_REPORT = "compress.json"  # a compressed run: its source, plan, layers, accuracies
COMPRESSED_INIT = "compressed_init.npz"  # a compressed run's converted weights (its start)
TRAIN_LOG = "train.log"  # a sweep point's console output

STATES = ("new", "failed", "partial", "running", "diverged", "finished")


def status(workdir) -> str:
  """new | failed (a problem to fix, nothing trained) | partial | running (another process
  holds its lock) | diverged | finished."""
  workdir = fileio.workdir_path(workdir)
  if (workdir / RESULT).exists():
    return "finished"
  if run_lock.holder(workdir):
    return "running"
  if (workdir / DIVERGED).exists():
    return "diverged"
  if (workdir / CHECKPOINTS).exists():
    return "partial"
  if (workdir / FAILED).exists():
    return "failed"
  return "new"


def describe(workdir) -> dict:
  """One run at a glance, read from its files (no Orbax, no JAX): its state, the host
  running it, the newest saved step, the test accuracy when finished, the sweep point."""
  workdir = fileio.workdir_path(workdir)
  state = status(workdir)
  point = fileio.read_json(workdir / POINT) or {}
  row = {"name": workdir.name, "state": state, "point": point.get("index")}
  row["seed"] = (point.get("overrides") or {}).get("seed")
  if state == "running":
    row["host"] = (run_lock.holder(workdir) or "?").split(":")[0]
  if state in ("partial", "running", "diverged"):
    steps = (
      [int(p.name) for p in (workdir / CHECKPOINTS).iterdir() if p.name.isdigit()]
      if (workdir / CHECKPOINTS).exists()
      else []
    )
    row["step"] = max(steps, default=None)
  if state == "finished":
    result = fileio.read_json(workdir / RESULT) or {}
    row["test_accuracy"] = result.get("test_accuracy")
  if state == "failed":
    row["reason"] = (fileio.read_json(workdir / FAILED) or {}).get("message", "")
  return row


def status_table(rows: list[dict], accuracy: str = "test acc") -> str:
  """The table `python -m tnjax.sweep --status` prints, with a one-line total (`accuracy`
  heads the column of what the runs evaluate on)."""
  lines = [f"{'point':>5} {'seed':>4}  {'state':<28} {accuracy:>8}  directory"]
  for r in rows:
    state = r["state"] if r["state"] != "running" else f"running on {r.get('host', '?')}"
    if r["state"] in ("partial", "running") and r.get("step") is not None:
      state += f" (step {r['step']})"
    accuracy = f"{100 * r['test_accuracy']:.2f}%" if r.get("test_accuracy") is not None else ""
    point = "" if r.get("point") is None else str(r["point"])
    seed = "" if r.get("seed") is None else str(r["seed"])
    why = r.get("reason", "").removeprefix("tnjax: error: ")
    why = f"  ({why[:120]}{'...' if len(why) > 120 else ''})" if why else ""
    lines.append(f"{point:>5} {seed:>4}  {state:<28} {accuracy:>8}  {r['name']}{why}")
  counts = {s: sum(r["state"] == s for r in rows) for s in STATES}
  lines.append(f"{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ".")
  return "\n".join(lines)
