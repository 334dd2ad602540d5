"""What a run writes beside its checkpoints: metrics.jsonl, config.json, result.json,
TensorBoard event files and W&B.

Every process keeps the records (each returns the same result); only process 0 writes.
Every file goes through tnjax.fileio (local or gs://). On resume the log is cut back to
the restored step (written whole once), so a resumed run logs each step once, in order,
as an uninterrupted one does (a training mean whose window a stop cut covers only the
steps after the resume). After that, on a local disk each record is appended as it
comes (a crash tears at most the last line, which reading drops); on gs://, where
objects cannot be appended to, the log is written whole at most every
`remote_flush_seconds` and at every checkpoint. TensorBoard's event files (tensorboardX,
no TensorFlow) go into the workdir itself, purged past the restored step on resume.
wandb is imported lazily; its default mode, 'disabled', needs no login and no network.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid

import jax
import numpy as np

from tnjax import errors, extras
from tnjax import fileio
from tnjax.training import run_files

METRICS = run_files.METRICS


def _plain(value):
  if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "dtype"):
    return np.asarray(value).item()
  return value


class MetricWriter:
  """write(step, metrics) to WORKDIR/metrics.jsonl and, if enabled, to wandb."""

  def __init__(
    self,
    workdir,
    config,
    *,
    resumed_step: int = 0,
    remote_flush_seconds: float = 30.0,
    before_write=None,
  ):
    self.workdir = fileio.workdir_path(workdir)
    self.active = jax.process_index() == 0
    self._records = []
    self._wandb_run = None
    self._remote_flush_seconds = remote_flush_seconds if fileio.is_remote(self.workdir) else 0.0
    self._last_flush = time.monotonic()
    self._before_write = before_write or (lambda: None)  # e.g. the workdir lock's check
    mode = config.wandb.mode  # checked by validate.py
    # Records past the restored step belong to steps that will be run again.
    self._records = [
      r for r in fileio.read_jsonl(self.workdir / METRICS) if r.get("step", 0) <= resumed_step
    ]
    self._written = 0  # how many of the records the file holds
    self._rewrite()
    self._tensorboard = None
    if self.active and getattr(config, "tensorboard", True):
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top

      self._tensorboard = SummaryWriter(
        os.fspath(self.workdir), purge_step=resumed_step + 1 if resumed_step else None
      )
    if self.active and mode != "disabled":
      self._wandb_run = _init_wandb(self.workdir, config)

  @property
  def records(self) -> list[dict]:
    return list(self._records)

  def write(self, step: int, metrics: dict) -> None:
    record = {"step": int(step), "time": time.time(), **{k: _plain(v) for k, v in metrics.items()}}
    for key, value in record.items():  # a NaN never reaches the log (or result.json)
      if isinstance(value, float) and not math.isfinite(value):
        raise errors.Diverged(
          f"{key} is {value} at step {step}; nothing was saved after it. "
          "Lower the learning rate (config.schedule.learning_rate)."
        )
    self._records.append(record)
    if not self.active:
      return
    if time.monotonic() - self._last_flush >= self._remote_flush_seconds:
      self.flush()
    if self._tensorboard is not None:
      for key, value in record.items():
        if key not in ("step", "time") and isinstance(value, (int, float)):
          self._tensorboard.add_scalar(key, value, global_step=int(step), walltime=record["time"])
    if self._wandb_run is not None:
      self._wandb_run.log(
        {k: v for k, v in record.items() if k not in ("step", "time")}, step=int(step)
      )

  def flush(self) -> None:
    """The records not yet in the file: appended locally, the whole log on gs://."""
    if not self.active or self._written == len(self._records):
      return
    if fileio.is_remote(self.workdir):
      self._rewrite()
      return
    self._before_write()
    fileio.append_text(self.workdir / METRICS, _lines(self._records[self._written :]))
    self._written = len(self._records)
    self._last_flush = time.monotonic()

  def _rewrite(self) -> None:
    if not self.active:
      return
    self._before_write()
    fileio.write_text(self.workdir / METRICS, _lines(self._records))
    self._written = len(self._records)
    self._last_flush = time.monotonic()

  def write_json(self, name: str, obj) -> None:
    """config.json, result.json, ...: strict JSON, written whole by process 0."""
    if self.active:
      self._before_write()
      fileio.write_json(self.workdir / name, obj)

  def close(self) -> None:
    if not self.active:
      return
    self.flush()
    if self._tensorboard is not None:
      self._tensorboard.close()
      self._tensorboard = None
    if self._wandb_run is not None:
      self._wandb_run.finish()
      self._wandb_run = None


def _lines(records) -> str:
  return "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)


def _init_wandb(workdir, config):
  wandb = extras.require("wandb", f"config.wandb.mode={config.wandb.mode!r}")

  # The run id lives in the workdir so a resumed (pre-empted) job continues the same run.
  id_file = workdir / "wandb_run_id.txt"
  if os.environ.get("WANDB_RUN_ID"):  # a W&B sweep agent assigns the id
    run_id = os.environ["WANDB_RUN_ID"]
  elif id_file.exists():
    run_id = id_file.read_text().strip()
  else:
    run_id = uuid.uuid4().hex[:12]
    fileio.write_text(id_file, run_id)
  # wandb keeps its files on a local disk; a gs:// workdir gets them in the working directory.
  local_dir = None if fileio.is_remote(workdir) else os.fspath(workdir)
  w = config.wandb
  return wandb.init(
    project=w.project,
    entity=w.entity or None,
    name=w.name or None,
    group=w.group or None,
    config=config.to_dict(),
    dir=local_dir,
    mode=w.mode,
    id=run_id,
    resume="allow",
  )


def read_metrics(workdir, filename: str = METRICS) -> list[dict]:
  """All records of a run's JSONL file, in order."""
  return fileio.read_jsonl(fileio.workdir_path(workdir) / filename)
