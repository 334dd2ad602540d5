"""The trainer's config schema: what base_config() holds, the helpers config files build
on (shrink_for_smoke_run, apply_offline_source), and how the schema evolves (the
fields a resumed run may change, fields added with a default, renamed fields). Loading a
config file with overrides is config_lib's job.
"""

from __future__ import annotations

import ml_collections

from tnjax import data as data_lib


FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def apply_offline_source(c: ml_collections.ConfigDict, fashion_idx: bool, synthetic: bool):
  """The `fashion_idx` / `synthetic` config arguments: read data without TFDS (one of them)."""
  if fashion_idx and synthetic:
    raise ValueError(
      "config arguments fashion_idx and synthetic each choose the data; give one of them."
    )
  if fashion_idx:
    c.data.source, c.data.name, c.data.idx_dir = "idx", "fashion_mnist", FASHION_MNIST_IDX_DIR
  if synthetic:
    c.data.source, c.data.name = "synthetic", "synthetic"
  return c


def base_config() -> ml_collections.ConfigDict:
  """Every field the trainer reads, with defaults."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Compute dtype of every layer ('bfloat16': bf16 activations and contractions;
  # parameters, optimizer state and the loss stay float32). A spec's dtype overrides it.
  c.dtype = "float32"
  c.data = data_lib.default_data_config()
  c.model = ml_collections.ConfigDict({"name": "fc2"})

  c.num_epochs = 10
  c.batch_size = 100
  c.eval_batch_size = 1000

  c.optimizer = ml_collections.ConfigDict(
    {
      "name": "sgd",  # sgd | adam | adamw
      "momentum": 0.9,
      "nesterov": False,
      "weight_decay": 0.0,  # L2 on all parameters (added to the gradient)
    }
  )
  # Parameters the optimizer updates: '' = all; otherwise a regex searched in each
  # parameter's path ('fc6/cores/0'), e.g. 'fc6|fc7|fc8' to train only the head of a
  # pretrained VGG. Frozen parameters get no update and no weight decay.
  c.trainable = ""
  c.schedule = ml_collections.ConfigDict(
    {
      "name": "constant",  # constant | logspace | cosine | step
      "learning_rate": 1e-2,  # initial value
      "end_learning_rate": 1e-5,
      "decay_epochs": 0,  # logspace: epochs over which lr goes to the end value (0 = all)
      "warmup_epochs": 0,  # cosine: linear warm-up
      "decay_steps": 0,  # step: multiply by decay_rate every decay_steps steps
      "decay_rate": 1.0,
    }
  )

  c.checkpoint = ml_collections.ConfigDict(
    {
      "every_steps": 0,  # 0 = at the end of every epoch
      "keep": 3,
      "async_save": True,
    }
  )
  # Devices: data=1, model=1: one device; --config.mesh.data=-1: data parallel over all;
  # data=4, model=2 also splits arrays of >= mesh_min_shard_size entries over 'model'.
  c.mesh = ml_collections.ConfigDict({"data": 1, "model": 1})
  c.mesh_min_shard_size = 1 << 16
  # Trained dense weights to start from (tnjax/training/pretrained.py): .npz / .h5 of arrays named
  # like the model's parameters ('conv1_1/kernel'); rename maps file names to those paths.
  # allow_random_frozen: let config.trainable freeze layers no file sets (smoke runs only;
  # otherwise a frozen layer without weights is refused).
  c.pretrained = ml_collections.ConfigDict(
    {"path": "", "rename": ml_collections.ConfigDict(), "allow_random_frozen": False}
  )
  c.log_every_steps = 50
  c.progress_bar = True
  c.tensorboard = True  # TensorBoard event files in the workdir (--noconfig.tensorboard: none)
  c.wandb = ml_collections.ConfigDict(
    {
      "mode": "disabled",  # disabled | offline | online
      "project": "tnjax",
      "entity": "",
      "name": "",
      "group": "",
    }
  )
  return c


def shrink_for_smoke_run(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`runlocal`: the same experiment at a size that runs in seconds."""
  c.num_epochs = 2
  c.batch_size = min(c.batch_size, 16)
  c.eval_batch_size = 64
  c.data.max_train_examples = 128
  c.data.max_test_examples = 64
  c.log_every_steps = 2
  return c


# --- Schema facts: which saved fields may differ, which were added or renamed ---

# Dotted prefixes of fields that cannot change the trained parameters: a resume may change them.
HARMLESS_FIELDS = (
  "log_every_steps",
  "progress_bar",
  "tensorboard",
  "checkpoint.",
  "eval_batch_size",
  "wandb.",
  "mesh.",
  "mesh_min_shard_size",
  "data.data_dir",
  "data.idx_dir",
  "data.max_test_examples",
  "data.held_out_eval",  # which examples are evaluated, not which train
  "pretrained.allow_random_frozen",
)
# Fields added after runs were made, with the value that reproduces those runs:
# a saved config without the field and a current one holding this value agree.
ADDED_WITH_DEFAULT = {
  "dtype": "float32",
  "trainable": "",
  "data.normalization": "imagenet",
  "data.whiten": "",
  "schedule.decay_steps": 0,
  "schedule.decay_rate": 1.0,
  "pretrained.allow_random_frozen": False,
  "data.held_out_eval": 0,
}
# config.model fields of configs written before every model took `layers` (tnjax <= stop 14).
RENAMED_MODEL_FIELDS = {"hidden_layer": "layers.hidden", "output_layer": "layers.output"}
WANDB_MODES = ("disabled", "offline", "online")


def is_harmless(key: str) -> bool:
  """Whether the dotted field `key` may change when a run resumes."""
  return any(
    key == h or key.startswith(h) if h.endswith(".") else key == h for h in HARMLESS_FIELDS
  )
