"""Shared by the run-lifecycle tests: a small config, the CLI as a subprocess, and waits."""

import os
import subprocess
import sys
import time

import jax
import numpy as np

from tnjax.training import checkpoint as checkpoint_lib
from tnjax.training import writers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# 8 epochs x 32 steps of a small TT FC-2 on synthetic data; a step takes a few ms.
EPOCHS = 8
CONFIG = "configs/tt_mnist.py:synthetic,runlocal"
ARGS = [
  f"--config.num_epochs={EPOCHS}",
  "--config.data.max_train_examples=0",
  "--config.data.synthetic.num_train=512",
  "--config.log_every_steps=4",
  "--noconfig.progress_bar",
]
TOTAL_STEPS = EPOCHS * (512 // 16)


def reference_run(workdir):
  """The run of CONFIG + ARGS, uninterrupted and in-process (no interpreter start-up)."""
  from tnjax.training import trainer  # pylint: disable=g-import-not-at-top

  return trainer.train(small_config(), str(workdir)).result


def small_config(**fields):
  """The same run as ARGS, built in-process."""
  from tnjax.configs import tt_mnist  # pylint: disable=g-import-not-at-top

  c = tt_mnist.get_config("synthetic,runlocal")
  c.num_epochs, c.log_every_steps, c.progress_bar = EPOCHS, 4, False
  c.data.max_train_examples, c.data.synthetic.num_train = 0, 512
  for key, value in fields.items():
    *parents, leaf = key.split(".")
    node = c
    for name in parents:
      node = node[name]
    node[leaf] = value
  return c


def env(**extra):
  e = dict(
    os.environ, WANDB_MODE="disabled", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu", **extra
  )
  e["PYTHONPATH"] = REPO + os.pathsep + e.get("PYTHONPATH", "")
  return e


def cli(module, *args):
  return [sys.executable, "-m", module, *args]


def train_command(workdir, *extra):
  return cli("tnjax.train", "--config", CONFIG, *ARGS, "--workdir", str(workdir), *extra)


def start(command, **extra_env):
  return subprocess.Popen(
    command,
    cwd=REPO,
    env=env(**extra_env),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def run(command, timeout=300, **extra_env):
  return subprocess.run(
    command, cwd=REPO, env=env(**extra_env), capture_output=True, text=True, timeout=timeout
  )


def wait_for(predicate, timeout=240, what="condition"):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    time.sleep(0.05)
  raise AssertionError(f"timed out waiting for {what}")


def logged_step(workdir) -> int:
  try:
    records = writers.read_metrics(str(workdir))
  except ValueError:  # read while being replaced
    return 0
  return max((r["step"] for r in records), default=0)


def flat_params(checkpoints, step=None):
  arrays = checkpoint_lib.restore_arrays(str(checkpoints), step)
  return {
    jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(arrays)
  }


def assert_same_params(a, b):
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def log_without_times(workdir):
  """metrics.jsonl minus the fields that depend on the clock."""
  clock = ("time", "examples_per_sec", "epoch_seconds")
  return [
    {k: v for k, v in r.items() if k not in clock} for r in writers.read_metrics(str(workdir))
  ]
