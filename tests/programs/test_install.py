"""What installing and importing tnjax promises: a missing extra is one line naming it,
packaged configs by name, no settings changed on import, and what programs turn on
(TensorBoard files, the compilation cache, an appended metrics log)."""

import json
import os
import struct
import subprocess
import sys

import pytest

from tnjax import config_lib, errors, extras, fileio
from tnjax.training import schema as config_schema
from tnjax.training import writers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_IMPORT_EVERYTHING = """
import copy, json, os
import fsspec, jax
from absl import flags, logging  # absl's logging and Orbax define their own flags
from etils import epath
import flax, optax, orbax.checkpoint

def settings():
  names = ("jax_enable_x64", "jax_compilation_cache_dir", "jax_enable_compilation_cache",
           "jax_default_matmul_precision", "jax_cpu_collectives_implementation")
  return {
    "env": dict(os.environ),
    "fsspec": copy.deepcopy(fsspec.config.conf),
    "jax": {n: getattr(jax.config, n) for n in names},
    "flags": sorted(flags.FLAGS),
  }

before = settings()
import tnjax as tn
for name in tn.__all__:
  getattr(tn, name)
from tnjax.training import trainer, writers, validate
from tnjax.compression import workflow, evaluate_export, serving, linen
from tnjax.data import memory, stream, eval_pipeline
after = settings()
print(json.dumps({k: before[k] == after[k] for k in before}))
"""


def test_importing_every_part_of_tnjax_changes_no_setting_of_another_library():
  env = {k: v for k, v in os.environ.items() if k not in ("EPATH_USE_TF",)}
  env["PYTHONPATH"] = REPO
  result = subprocess.run(
    [sys.executable, "-c", _IMPORT_EVERYTHING],
    capture_output=True,
    text=True,
    timeout=300,
    env=env,
    cwd=REPO,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  unchanged = json.loads(result.stdout.strip().splitlines()[-1])
  assert unchanged == {"env": True, "fsspec": True, "jax": True, "flags": True}


@pytest.mark.parametrize(
  "module, feature, extra",
  [
    ("tensorflow_datasets", "data.source='tfds'", "tfds"),
    ("wandb", "config.wandb.mode='offline'", "wandb"),
    ("gcsfs", "the gs:// path gs://b/run", "gcs"),
  ],
)
def test_a_missing_extra_is_one_line_naming_the_pip_install(monkeypatch, module, feature, extra):
  monkeypatch.setitem(sys.modules, module, None)  # what an environment without it imports
  message = rf"{feature} needs {module}, which is not installed; pip install 'tnjax\[{extra}\]'"
  with pytest.raises(errors.UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
    extras.require(module, feature)
  with pytest.raises(errors.UserError, match=rf"pip install 'tnjax\[{extra}\]' adds it"):
    extras.check_installed(module, feature)


def test_config_checks_and_paths_name_the_extra_before_anything_is_written(monkeypatch, tmp_path):
  from tnjax.training import validate

  monkeypatch.setitem(sys.modules, "wandb", None)
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  monkeypatch.setitem(sys.modules, "gcsfs", None)
  config = config_lib.load_config("tt_mnist:synthetic,runlocal", {"wandb.mode": "offline"})
  with pytest.raises(errors.UserError, match=r"wandb.mode='offline' needs wandb.*tnjax\[wandb\]"):
    validate.validate_config(config)
  config = config_lib.load_config("tt_mnist:runlocal")  # TFDS input
  with pytest.raises(errors.UserError, match=r"source='tfds' needs tensorflow_datasets.*\[tfds\]"):
    validate.validate_config(config)
  with pytest.raises(errors.UserError, match=r"gs://bucket/run needs gcsfs.*tnjax\[gcs\]"):
    fileio.workdir_path("gs://bucket/run")
  # Every path the trainer reads, not only the workdir (these were 60-line tracebacks).
  for field, value in (("data.idx_dir", "gs://b/idx"), ("pretrained.path", "gs://b/w.npz")):
    config = config_lib.load_config("dense_mnist:fashion_idx,runlocal", {field: value})
    with pytest.raises(errors.UserError, match=rf"^the gs:// path {value} needs gcsfs.*\[gcs\]"):
      validate.validate_config(config)
  config = config_lib.load_config("dense_mnist:fashion_idx,runlocal", {"data.idx_dir": "s3://b/i"})
  with pytest.raises(errors.UserError, match=r"idx_dir 's3://b/i': only local paths and gs://"):
    validate.validate_config(config)
  with pytest.raises(errors.UserError, match=r"^workdir 's3://b/run': only local paths and gs://"):
    fileio.workdir_path("s3://b/run")  # no run lock there: a fleet's lock needs GCS's writes
  assert not list(tmp_path.iterdir())


def test_an_installed_module_that_fails_inside_keeps_its_own_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "numpy_missing_part", None)

  def broken(name, *args, **kwargs):
    raise ModuleNotFoundError("No module named 'numpy_missing_part'", name="numpy_missing_part")

  monkeypatch.setattr(extras.importlib, "import_module", broken)
  with pytest.raises(ModuleNotFoundError, match="numpy_missing_part"):
    extras.require("wandb", "W&B")  # wandb is there; something it imports is broken


def test_packaged_configs_load_by_name_as_a_module_and_by_path():
  by_name = config_lib.load_config("tt_mnist:synthetic,rank=4")
  by_module = config_lib.load_config("tnjax.configs.tt_mnist:synthetic,rank=4")
  by_path = config_lib.load_config(os.path.join(REPO, "configs", "tt_mnist.py:synthetic,rank=4"))
  assert by_name.to_dict() == by_module.to_dict() == by_path.to_dict()
  names = config_lib.packaged_config_names()
  assert {"tt_mnist", "cpac_mnist", "sketch_mnist", "adtn_fc2_mnist", "tt_vgg16"} <= set(names)
  assert "common" not in names and "sketch_common" not in names  # helpers, not configs
  with pytest.raises(errors.UserError, match=r"'tt_mnsit' is neither .* or one of adtn_"):
    config_lib.load_config("tt_mnsit")


def test_the_readmes_config_paths_run_outside_a_clone_and_urls_are_one_line(monkeypatch, tmp_path):
  monkeypatch.chdir(tmp_path)  # no configs/ here: the README's path is the packaged config
  outside = config_lib.load_config("configs/tt_mnist.py:synthetic,rank=4")
  assert outside.to_dict() == config_lib.load_config("tt_mnist:synthetic,rank=4").to_dict()
  with pytest.raises(errors.UserError, match=r"^config 'configs/tt_mnsit.py' is neither"):
    config_lib.load_config("configs/tt_mnsit.py")
  # Only the README's own relative path: a mistyped path to a user's file is not replaced.
  with pytest.raises(errors.UserError, match=r"^config '/elsewhere/configs/tt_mnist.py' is nei"):
    config_lib.load_config("/elsewhere/configs/tt_mnist.py")
  # The URL's colon is not the argument's: the file, not 'gs', is what the line names.
  with pytest.raises(errors.UserError, match=r"^plan file gs://b/plan.py is a URL; plan files"):
    config_lib.load_module("gs://b/plan.py:arg", "get_plan")
  _, arg = config_lib.load_module("tt_mnist:data_dir=gs://b/tfds")  # a URL in the argument
  assert arg == "data_dir=gs://b/tfds"


def _events(path):
  """(tag, step, value) of every scalar in a TensorBoard event file (TFRecord framing)."""
  from tensorboardX.proto import event_pb2

  data, scalars, offset = path.read_bytes(), [], 0
  while offset < len(data):
    (length,) = struct.unpack("<Q", data[offset : offset + 8])
    event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
    offset += 12 + length + 4
    for value in event.summary.value:
      scalars.append((value.tag, event.step, value.simple_value))
  return scalars


class _Config:
  """What MetricWriter reads of a config."""

  def __init__(self, tensorboard=True):
    self.tensorboard = tensorboard
    self.wandb = type("W", (), {"mode": "disabled"})()


def test_tensorboard_gets_every_numeric_record_and_the_log_is_appended(tmp_path, monkeypatch):
  rewrites = []
  real_write_text = fileio.write_text
  monkeypatch.setattr(
    fileio, "write_text", lambda p, t: (rewrites.append(p), real_write_text(p, t))
  )
  writer = writers.MetricWriter(str(tmp_path), _Config())
  sizes = []
  for step in range(1, 6):
    writer.write(step, {"train_loss": 1.0 / step, "note": "text is not a scalar"})
    sizes.append((tmp_path / "metrics.jsonl").stat().st_size)
  writer.close()
  assert len(rewrites) == 1  # the log was written whole once (when opened), then appended to
  assert sizes == sorted(set(sizes))  # each record reached the file as it came
  assert [r["step"] for r in writers.read_metrics(str(tmp_path))] == [1, 2, 3, 4, 5]
  (events,) = tmp_path.glob("events.out.tfevents.*")
  scalars = _events(events)
  assert [(tag, step) for tag, step, _ in scalars] == [("train_loss", s) for s in range(1, 6)]
  assert [v for *_, v in scalars] == pytest.approx([1.0 / s for s in range(1, 6)])


def test_no_tensorboard_files_with_the_field_off(tmp_path):
  writer = writers.MetricWriter(str(tmp_path), _Config(tensorboard=False))
  writer.write(1, {"train_loss": 0.5})
  writer.close()
  assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]
  assert config_schema.is_harmless("tensorboard")  # a resume may turn it on or off


_COMPILE = """
import sys
from absl import flags
from tnjax import programs
flags.FLAGS(sys.argv)
directory = programs.use_compile_cache()
import jax, jax.numpy as jnp
jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((64, 64))).block_until_ready()
print("DIR", directory)
"""


@pytest.mark.parametrize("flag", [[], ["--nocompile_cache"]])
def test_programs_keep_compiled_code_per_machine_kind_unless_told_not_to(tmp_path, flag):
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
  env.update(XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  result = subprocess.run(
    [sys.executable, "-c", _COMPILE, *flag], capture_output=True, text=True, env=env, timeout=300
  )
  assert result.returncode == 0, result.stderr[-3000:]
  directory = result.stdout.split("DIR ", 1)[1].strip()
  if flag:
    assert directory == "None" and not (tmp_path / "tnjax").exists()
    return
  root = tmp_path / "tnjax" / "xla"
  (kind,) = [p.name for p in root.iterdir()]
  assert directory == str(root / kind) and kind.startswith("cpu-")
  assert any((root / kind).iterdir())  # the compiled function is kept
