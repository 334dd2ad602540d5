"""The files a run's workdir holds, named once, and the run's state read from them.

The trainer writes them, sweeps read them to decide what to run, and the report
scripts and `tnjax.load` read them back. Every path goes through tnjax.fileio.
"""

from __future__ import annotations

from tnjax import fileio
from tnjax.training import run_lock

CONFIG = "config.json"  # the run's config, readable without Orbax
RESULT = "result.json"  # written when the run finishes; its presence means "done"
DIVERGED = "diverged.json"  # the loss became non-finite; why, and the last good checkpoint
METRICS = "metrics.jsonl"  # one record per log step and per evaluation
CHECKPOINTS = "checkpoints"  # Orbax steps, each holding the state and the config
HISTORY = "config_history.jsonl"  # accepted config changes (--allow_config_change)
PREPROCESSING = "preprocessing.npz"  # arrays fitted on the train split (e.g. ZCA)
POINT = "point.json"  # a sweep point's index, config and overrides
FAILED = "failed.json"  # a sweep point that failed with a problem to fix, and its one line
COMPRESS_REPORT = "compress.json"  # a compressed run: its source, plan, layers, accuracies
COMPRESSED_INIT = "compressed_init.npz"  # a compressed run's converted weights (its start)
TRAIN_LOG = "train.log"  # a sweep point's console output

STATES = ("new", "failed", "partial", "running", "diverged", "done")


def status(workdir) -> str:
  """new | failed (a problem to fix, nothing trained) | partial | running (another process
  holds its lock) | diverged | done."""
  workdir = fileio.workdir_path(workdir)
  if (workdir / RESULT).exists():
    return "done"
  if run_lock.holder(workdir):
    return "running"
  if (workdir / DIVERGED).exists():
    return "diverged"
  if (workdir / CHECKPOINTS).exists():
    return "partial"
  if (workdir / FAILED).exists():
    return "failed"
  return "new"
