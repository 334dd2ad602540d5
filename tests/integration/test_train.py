"""End-to-end training through the CLI, resume after SIGKILL, and config errors."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tnjax.training import checkpoint as checkpoint_lib
from tnjax import config_args
from tnjax.training import trainer
from tnjax.training import writers

import run_helpers as h

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.slow

# Runs the real CLI (flag parsing, config file, overrides) inside tfds's mock.
_MOCKED_CLI = """
import sys
import tensorflow_datasets as tfds
from absl import app
from tnjax import config_lib, train
train.define_flags()
with tfds.testing.mock_data(num_examples=int(sys.argv[1])):
  argv, overrides = config_lib.split_overrides(["tnjax.train"] + sys.argv[2:])
  app.run(lambda args: train.main(args, overrides), argv=argv)
"""


def _env():
  env = dict(os.environ, WANDB_MODE="disabled", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _cli(*args):
  return [sys.executable, "-m", "tnjax.train", *args]


def test_fc2_tt_config_trains_through_cli_under_tfds_mock(tmp_path):
  workdir = tmp_path / "run"
  result = subprocess.run(
    [
      sys.executable,
      "-c",
      _MOCKED_CLI,
      "96",
      "--config",
      "configs/tt_mnist.py:runlocal",
      "--workdir",
      str(workdir),
      "--config.num_epochs=3",
      "--config.model.layers.hidden.ranks=4",
    ],
    cwd=REPO,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "4x8x8x4 -> 4x8x8x4 ranks 4-4-4" in result.stdout  # the layer table
  records = writers.read_metrics(str(workdir))
  evals = [r for r in records if "test_accuracy" in r]
  assert [r["epoch"] for r in evals] == [1, 2, 3]
  assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in evals)
  assert all(np.isfinite(r["train_loss"]) for r in records if "train_loss" in r)
  ckpt = checkpoint_lib.Checkpointer(str(workdir / "checkpoints"))
  steps_per_epoch = 96 // 16
  assert ckpt.latest_step() == 3 * steps_per_epoch
  saved = ckpt.saved_config()
  assert saved["model"]["layers"]["hidden"]["ranks"] == 4  # the override is in the checkpoint


def _smoke_config(**overrides):
  from tnjax.configs import tt_mnist

  config = tt_mnist.get_config("synthetic,runlocal")
  config.data.synthetic.num_train = 256
  config.data.synthetic.num_test = 64
  config.data.max_train_examples = 0
  config.progress_bar = False
  with config.unlocked():
    for key, value in overrides.items():
      config[key] = value
  return config


def test_training_learns_and_compiles_the_step_once(tmp_path):
  config = _smoke_config(num_epochs=4)
  config.optimizer.weight_decay = 0.0
  config.schedule.update(name="constant", learning_rate=0.05)
  result = trainer.train(config, str(tmp_path)).result
  assert result["train_step_compilations"] == 1
  # The synthetic task is learnable: far above the 10% chance level.
  assert result["test_accuracy"] > 0.6
  # 1024x1024 TT (4x8x8x4, rank 8): 8,448 + 1,024 bias; FC 1024x10: 10,250.
  assert result["num_params"] == 8448 + 1024 + 10250


def _flat_params(workdir):
  arrays = checkpoint_lib.restore_arrays(str(workdir / "checkpoints"))
  return {
    jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(arrays)
  }


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
  # 8 epochs x 32 steps, a checkpoint every 16 steps; the uninterrupted reference runs
  # in-process (checkpoint settings cannot change the trained numbers).
  args = [
    "--config",
    "configs/tt_mnist.py:synthetic,runlocal",
    "--config.num_epochs=8",
    "--config.data.max_train_examples=0",
    "--config.data.synthetic.num_train=512",
    "--config.log_every_steps=4",
    "--config.checkpoint.every_steps=16",
    "--config.checkpoint.async_save=true",
    "--noconfig.progress_bar",
  ]
  full, killed = tmp_path / "full", tmp_path / "killed"
  h.reference_run(full)

  process = subprocess.Popen(
    _cli(*args, "--workdir", str(killed)),
    cwd=REPO,
    env=_env(),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  checkpoints = killed / "checkpoints"
  deadline = time.time() + 240
  while time.time() < deadline:
    done = [d for d in os.listdir(checkpoints) if d.isdigit()] if checkpoints.exists() else []
    if any(int(d) >= 64 for d in done):
      break
    time.sleep(0.02)
  still_running = process.poll() is None
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert still_running, "the run finished before it could be killed; make it longer"
  total_steps = h.TOTAL_STEPS
  killed_at = checkpoint_lib.Checkpointer(str(checkpoints)).latest_step()
  assert 0 < killed_at < total_steps

  resumed = subprocess.run(
    _cli(*args, "--workdir", str(killed)),
    cwd=REPO,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "Resumed from" in resumed.stdout

  expected, actual = _flat_params(full), _flat_params(killed)
  assert expected.keys() == actual.keys()
  for key in expected:
    np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("model.name", "resnet", "config.model.name='resnet' is unknown"),
    ("model.layers.hidden", {"kind": "tucker9"}, "Unknown layer kind 'tucker9'"),
    (
      "model.layers.hidden",
      {"kind": "tt", "ranks": 4, "in_shape": (4, 8, 8), "out_shape": (4, 8, 8)},
      "multiplies to 256",
    ),
    ("model.layers.hidden", {"kind": "tt", "ranks": 0}, "ranks must be >= 1"),
    ("batch_size", 100000, "exceeds the 256 training examples"),
    ("schedule.name", "triangle", "config.schedule.name='triangle' is unknown"),
    ("optimizer.name", "lion9", "config.optimizer.name='lion9' is unknown"),
    ("wandb.mode", "cloud", "config.wandb.mode='cloud' is unknown"),
  ],
)
def test_bad_config_gives_a_clear_error(tmp_path, field, value, message):
  config = _smoke_config()
  with config.unlocked():
    parent, _, leaf = field.rpartition(".")
    (config[parent] if parent else config)[leaf] = value
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    trainer.train(config, str(tmp_path)).result


def test_config_arguments_are_typed_and_checked():
  args = config_args.parse_arg("rank=4,runlocal,lr=0.5", rank=8, runlocal=False, lr=1.0)
  assert (args.rank, args.runlocal, args.lr) == (4, True, 0.5)
  with pytest.raises(
    ValueError, match="config argument 'rnak' is unknown \\(did you mean rank\\?\\)"
  ):
    config_args.parse_arg("rnak=4", rank=8)
