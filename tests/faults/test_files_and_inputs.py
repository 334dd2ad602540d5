"""User-fixable failures of files and inputs: one line naming the file and the fix, and
nothing left half-written (issue 24's table, the rows that need no training run)."""

import gzip
import json
import os

import numpy as np
import pytest

from tnjax import errors, fileio
from tnjax.data import idx
from tnjax.training import pretrained, writers


def test_a_workdir_that_is_a_file_or_lies_under_one_is_refused_in_one_line(tmp_path):
  a_file = tmp_path / "notes.txt"
  a_file.write_text("x")
  with pytest.raises(errors.UserError, match=r"notes.txt is a file, not a directory"):
    fileio.check_workdir(a_file)
  with pytest.raises(errors.UserError, match=r"part of the path is a file, not a directory"):
    fileio.check_workdir(a_file / "run")


def test_a_read_only_workdir_is_refused_in_one_line(read_only_dir):
  with pytest.raises(errors.UserError, match=r"cannot write .*(read-only|permission denied)"):
    fileio.check_workdir(read_only_dir / "run")


def test_a_full_disk_names_the_file_and_leaves_no_temporary_behind(small_disk):
  (small_disk / "filler").write_bytes(b"\0" * 500_000)
  with pytest.raises(errors.UserError, match=r"cannot write .*metrics.jsonl.*disk is full"):
    fileio.write_text(small_disk / "metrics.jsonl", "x" * 300_000)
  assert sorted(os.listdir(small_disk)) == ["filler"]  # no .metrics.jsonl.*.tmp


def test_a_torn_last_metrics_record_is_dropped_on_resume_with_a_warning(tmp_path):
  good = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
  text = "".join(json.dumps(r) + "\n" for r in good)
  (tmp_path / "metrics.jsonl").write_text(text + '{"step": 3, "lo')
  config = type("C", (), {"wandb": type("W", (), {"mode": "disabled"})()})()
  with pytest.warns(UserWarning, match=r"metrics.jsonl: its last line \(3\) is cut short"):
    writer = writers.MetricWriter(str(tmp_path), config, resumed_step=2)
  assert writer.records == good
  writer.close()
  assert writers.read_metrics(str(tmp_path)) == good  # rewritten whole, without the torn line


def test_a_damaged_record_before_the_last_is_a_one_line_error_naming_the_line(tmp_path):
  (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": \n{"step": 3}\n')
  with pytest.raises(errors.UserError, match=r"metrics.jsonl line 2 is not valid JSON"):
    fileio.read_jsonl(tmp_path / "metrics.jsonl")


def _idx_bytes(images: np.ndarray) -> bytes:
  header = bytes([0, 0, 8, images.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
  return header + images.astype(np.uint8).tobytes()


def test_damaged_idx_files_name_the_file(tmp_path):
  images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
  whole = tmp_path / "train-images-idx3-ubyte.gz"
  whole.write_bytes(gzip.compress(_idx_bytes(images)))
  np.testing.assert_array_equal(idx.read_idx(str(whole)), images)
  truncated = tmp_path / "truncated-idx3-ubyte.gz"
  truncated.write_bytes(whole.read_bytes()[:-40])
  with pytest.raises(errors.UserError, match=r"truncated-idx3-ubyte.gz is damaged .*EOFError"):
    idx.read_idx(str(truncated))
  cut_header = tmp_path / "cut-idx3-ubyte"
  cut_header.write_bytes(_idx_bytes(images)[:9])
  with pytest.raises(errors.UserError, match=r"cut-idx3-ubyte is damaged: its header is cut short"):
    idx.read_idx(str(cut_header))


def test_damaged_pretrained_files_name_the_file(tmp_path):
  not_npz = tmp_path / "weights.npz"
  not_npz.write_text("these are not weights")
  with pytest.raises(errors.UserError, match=r"weights.npz cannot be read as .npz"):
    pretrained.read_weights(str(not_npz))
  with_nan = tmp_path / "nan.npz"
  np.savez(with_nan, **{"fc1/kernel": np.array([[1.0, np.nan]]), "fc1/bias": np.zeros(2)})
  with pytest.raises(errors.UserError, match=r"nan.npz: 1 array\(s\) hold NaN .*fc1/kernel"):
    pretrained.read_weights(str(with_nan))
