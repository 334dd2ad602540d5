"""TrainLog: the trainer's metrics records, progress bar and one line per evaluation."""

from __future__ import annotations

import time

import jax
import numpy as np
from tqdm import auto as tqdm

from tnjax.training import setup as setup_lib


class TrainLog:
  """Training metrics between log steps: means, examples/s, the progress bar, epoch time.

  `window` holds the metrics of the steps since the last record; the trainer checks
  them for divergence (divergence.check_losses) before `write`.
  """

  def __init__(self, config, setup: setup_lib.Setup, writer, start_step: int, is_main: bool):
    self.config, self.setup, self.writer = config, setup, writer
    self.window, self.window_start = [], time.perf_counter()
    self.epoch_start = self.window_start if start_step % setup.data.steps_per_epoch == 0 else None
    self.progress = tqdm.tqdm(
      total=setup.total_steps,
      initial=start_step,
      unit="step",
      disable=not (config.progress_bar and is_main),
      dynamic_ncols=True,
    )

  def write(self, step: int) -> dict:
    means = {
      k: float(np.mean(v))
      for k, v in jax.device_get(jax.tree.map(lambda *xs: np.stack(xs), *self.window)).items()
    }
    seconds = time.perf_counter() - self.window_start
    steps_per_epoch = self.setup.data.steps_per_epoch
    record = {
      "train_loss": means["loss"],
      "train_accuracy": means["accuracy"],
      "examples_per_sec": len(self.window) * self.config.batch_size / seconds,
      "learning_rate": float(self.setup.schedule(step - 1)),
      "epoch": step / steps_per_epoch,
    }
    self.writer.write(step, record)
    self.progress.set_description(f"epoch {-(-step // steps_per_epoch)}/{self.config.num_epochs}")
    self.progress.set_postfix(loss=f"{means['loss']:.4f}", acc=f"{means['accuracy']:.3f}")
    self.progress.update(len(self.window))
    self.window, self.window_start = [], time.perf_counter()
    return record

  def announce(self, evaluated: dict) -> None:
    """One console line per evaluation (above the progress bar, in notebooks too)."""
    line = (
      f"epoch {evaluated['epoch']}/{self.config.num_epochs}: {setup_lib.evaluated_split(self.config)} loss "
      f"{evaluated['test_loss']:.4f}, accuracy {100 * evaluated['test_accuracy']:.2f}%"
    )
    if evaluated.get("epoch_seconds"):
      examples = self.setup.data.steps_per_epoch * self.config.batch_size
      line += f", {examples / evaluated['epoch_seconds']:,.0f} train examples/s"
    tqdm.tqdm.write(line)

  def epoch_seconds(self, state) -> dict:
    """Seconds of training in the epoch just ended, if it ran whole in this process."""
    out = {}
    if self.epoch_start is not None:
      jax.block_until_ready(state)
      out["epoch_seconds"] = time.perf_counter() - self.epoch_start
    self.epoch_start = time.perf_counter()
    return out
