"""Metric sinks: a JSONL file in the workdir (always) and Weights & Biases (by config).

Only process 0 writes. wandb is imported lazily and its default mode, 'disabled',
needs no login and no network.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import jax
import numpy as np

WANDB_MODES = ("disabled", "offline", "online")


def _plain(value):
  if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "dtype"):
    return np.asarray(value).item()
  return value


class MetricWriter:
  """write(step, metrics) to workdir/metrics.jsonl and, if enabled, to wandb."""

  def __init__(self, workdir: str, config, *, filename: str = "metrics.jsonl"):
    self.active = jax.process_index() == 0
    self._file = None
    self._wandb_run = None
    if not self.active:
      return
    os.makedirs(workdir, exist_ok=True)
    self._file = open(os.path.join(workdir, filename), "a", buffering=1)
    mode = config.wandb.mode
    if mode not in WANDB_MODES:
      raise ValueError(f"config.wandb.mode={mode!r} is unknown; choose one of {WANDB_MODES}.")
    if mode != "disabled":
      self._wandb_run = _init_wandb(workdir, config)

  def write(self, step: int, metrics: dict) -> None:
    if not self.active:
      return
    record = {"step": int(step), "time": time.time(), **{k: _plain(v) for k, v in metrics.items()}}
    self._file.write(json.dumps(record) + "\n")
    if self._wandb_run is not None:
      self._wandb_run.log({k: v for k, v in record.items() if k not in ("step", "time")},
                          step=int(step))

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
    if self._wandb_run is not None:
      self._wandb_run.finish()


def _init_wandb(workdir: str, config):
  import wandb  # pylint: disable=g-import-not-at-top
  # The run id lives in the workdir so a resumed (pre-empted) job continues the same run.
  id_file = os.path.join(workdir, "wandb_run_id.txt")
  if os.environ.get("WANDB_RUN_ID"):  # a W&B sweep agent assigns the id
    run_id = os.environ["WANDB_RUN_ID"]
  elif os.path.exists(id_file):
    run_id = open(id_file).read().strip()
  else:
    run_id = uuid.uuid4().hex[:12]
    with open(id_file, "w") as f:
      f.write(run_id)
  w = config.wandb
  return wandb.init(project=w.project, entity=w.entity or None, name=w.name or None,
                    group=w.group or None, config=config.to_dict(), dir=workdir, mode=w.mode,
                    id=run_id, resume="allow")


def read_metrics(workdir: str, filename: str = "metrics.jsonl") -> list[dict]:
  """All records of a run's JSONL file, in order."""
  path = os.path.join(workdir, filename)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
