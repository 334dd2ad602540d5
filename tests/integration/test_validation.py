"""Config validation before any data load or compile, and one-line CLI errors."""

import gzip
import struct
import time

import numpy as np
import pytest

from tnjax import errors
from tnjax.training import trainer
from tnjax.data import memory, tfds_source

import run_helpers as h


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("log_every_steps", 0, "config.log_every_steps=0 must be an integer >= 1"),
    ("checkpoint.keep", 0, "config.checkpoint.keep=0 must be an integer >= 1"),
    ("checkpoint.every_steps", -1, "config.checkpoint.every_steps=-1 must be an integer >= 0"),
    ("num_epochs", 0, "config.num_epochs=0 must be an integer >= 1"),
    ("data.source", "parquet", "config.data.source='parquet' is unknown"),
  ],
)
def test_bad_fields_are_refused_before_the_data_is_read(tmp_path, field, value, message):
  # The IDX directory does not exist: reaching the data would fail differently.
  config = h.small_config(
    **{"data.source": "idx", "data.idx_dir": str(tmp_path / "nothing"), field: value}
  )
  with pytest.raises(errors.UserError, match=message.replace("(", r"\(")):
    trainer.train(config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "checkpoints").exists()


def _write_idx(path, array):
  header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _idx_dir(tmp_path, train_images=256, train_labels=256, max_label=9):
  rng = np.random.default_rng(0)
  for stem, n in (("train", (train_images, train_labels)), ("t10k", (64, 64))):
    _write_idx(tmp_path / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 255, (n[0], 28, 28)))
    _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, max_label + 1, n[1]))
  return tmp_path


def test_idx_files_with_unequal_counts_are_refused(tmp_path):
  config = h.small_config(
    **{
      "data.source": "idx",
      "data.name": "fashion_mnist",
      "data.idx_dir": str(_idx_dir(tmp_path, train_labels=100)),
    }
  )
  with pytest.raises(errors.UserError, match="train split .* 256 images but 100 labels"):
    memory.load_dataset(config.data)


def test_idx_labels_beyond_the_class_count_are_refused(tmp_path):
  config = h.small_config(
    **{
      "data.source": "idx",
      "data.name": "fashion_mnist",
      "data.idx_dir": str(_idx_dir(tmp_path, max_label=12)),
    }
  )
  with pytest.raises(
    errors.UserError, match="labels .* reach 12, but data.name='fashion_mnist' has 10 classes"
  ):
    memory.load_dataset(config.data)


def test_offline_tfds_fails_in_seconds(tmp_path, monkeypatch):
  monkeypatch.setattr(tfds_source, "_network_reachable", lambda *a, **k: False)
  config = h.small_config(
    **{"data.source": "tfds", "data.name": "mnist", "data.data_dir": str(tmp_path / "tfds")}
  )
  start = time.time()
  with pytest.raises(errors.UserError, match="cannot reach the network .* data.source='idx'"):
    memory.load_dataset(config.data)
  assert time.time() - start < 30


@pytest.mark.slow
@pytest.mark.parametrize(
  "extra, line",
  [
    (
      ["--config.log_evry_steps=3"],
      "tnjax: error: --config.log_evry_steps: the config has no "
      "field 'log_evry_steps'; nearest: log_every_steps",
    ),
    (["--config.log_every_steps=0"], "tnjax: error: config.log_every_steps=0 must be an integer"),
  ],
)
def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, extra, line):
  result = h.run(h.train_command(tmp_path / "run", *extra))
  assert result.returncode == errors.EXIT_USER_ERROR
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(line), result.stderr[-2000:]
  debug = h.run(h.train_command(tmp_path / "run", *extra, "--debug"))
  assert "Traceback" in debug.stderr
