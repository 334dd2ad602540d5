"""Checked resume, divergence, unreadable checkpoints and finished-run reruns (in-process)."""

import json

import numpy as np
import pytest

from tnjax.training import checkpoint as checkpoint_lib
from tnjax import errors
from tnjax import fileio
from tnjax.training import resume_check
from tnjax.training import trainer

import run_helpers as h


def _short(**fields):
  return h.small_config(**{"num_epochs": 2, "checkpoint.every_steps": 8, **fields})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished 64-step run (checkpoints at 40, 48, 56, 64 kept: the last 3)."""
  workdir = tmp_path_factory.mktemp("finished") / "run"
  result, _ = trainer.train(_short(), str(workdir))
  return workdir, result


@pytest.mark.parametrize(
  "field, value, shown",
  [
    ("schedule.learning_rate", 0.5, "schedule.learning_rate: 0.01 -> 0.5"),
    ("seed", 7, "seed: 0 -> 7"),
    ("model.layers.hidden.ranks", 4, "model.layers.hidden.ranks: 8 -> 4"),
    ("num_epochs", 3, "num_epochs: 2 -> 3"),
  ],
)
def test_a_resume_that_changes_what_is_trained_is_refused(finished, field, value, shown):
  workdir, _ = finished
  before = (workdir / "config.json").read_text()
  with pytest.raises(errors.UserError, match="trained to step 64 with another config") as e:
    trainer.train(_short(**{field: value}), str(workdir))
  assert shown in str(e.value) and "--allow_config_change" in str(e.value)
  assert (workdir / "config.json").read_text() == before  # the first run's record is kept


def test_harmless_changes_pass_and_allowed_changes_are_recorded(tmp_path):
  workdir = tmp_path / "run"
  trainer.train(_short(num_epochs=1), str(workdir))
  # Logging and checkpointing settings may change on resume without a flag.
  trainer.train(_short(num_epochs=1, log_every_steps=8, **{"checkpoint.keep": 5}), str(workdir))
  result, _ = trainer.train(_short(num_epochs=2), str(workdir), allow_config_change=True)
  assert result["step"] == 64
  history = fileio.read_jsonl(workdir / resume_check.HISTORY)
  assert [c["key"] for c in history[0]["changes"]] == ["checkpoint.keep", "log_every_steps"]
  assert history[0]["allowed"] is False
  assert history[1]["step"] == 32 and history[1]["allowed"] is True
  assert {"key": "num_epochs", "old": 1, "new": 2} in history[1]["changes"]
  assert json.loads((workdir / "config.json").read_text())["num_epochs"] == 2


def test_a_nan_setting_is_refused_up_front(tmp_path):
  with pytest.raises(errors.UserError, match="config.schedule.learning_rate=nan is not a finite"):
    trainer.train(_short(**{"schedule.learning_rate": float("nan")}), str(tmp_path))


@pytest.mark.parametrize("learning_rate", [1e6, 300.0])
def test_divergence_stops_before_any_non_finite_state_is_saved(tmp_path, learning_rate):
  workdir = tmp_path / "run"
  config = _short(**{"schedule.learning_rate": learning_rate, "schedule.name": "constant"})
  with pytest.raises(errors.Diverged, match="became"):
    trainer.train(config, str(workdir))
  assert not (workdir / "result.json").exists()
  diverged = json.loads((workdir / "diverged.json").read_text())  # strict JSON: no bare NaN
  checkpoints = checkpoint_lib.Checkpointer(workdir / "checkpoints")
  assert diverged["last_checkpoint"] == checkpoints.latest_step()
  for step in checkpoints._manager.all_steps():  # whatever was saved is finite
    assert all(
      np.all(np.isfinite(v)) for v in h.flat_params(workdir / "checkpoints", step).values()
    )
  for record in fileio.read_jsonl(workdir / "metrics.jsonl"):
    assert all(np.isfinite(v) for v in record.values() if isinstance(v, float))
  # With a sane learning rate the run continues from its last good checkpoint.
  calm = _short(**{"schedule.learning_rate": 0.01, "schedule.name": "constant"})
  result, _ = trainer.train(calm, str(workdir), allow_config_change=True)
  assert result["step"] == 64 and np.isfinite(result["train_loss"])
  assert not (workdir / "diverged.json").exists() and (workdir / "result.json").exists()


def test_an_unreadable_newest_checkpoint_is_named_and_the_previous_one_used(
  finished, tmp_path, capsys
):
  source, _ = finished
  workdir = tmp_path / "run"
  import shutil  # pylint: disable=g-import-not-at-top

  shutil.copytree(source, workdir)
  (workdir / "result.json").unlink()
  (workdir / ".lock").unlink()
  damaged = [
    p
    for p in (workdir / "checkpoints" / "64").rglob("*")
    if p.is_file() and p.stat().st_size > 0 and "state" in p.parts and p.name != "_METADATA"
  ]
  for path in damaged:  # a half-synced copy: array data truncated
    path.write_bytes(path.read_bytes()[:5])
  # A save that was cut short: Orbax's temporary directory, never committed.
  (workdir / "checkpoints" / "72.orbax-checkpoint-tmp-1790000000").mkdir()
  capsys.readouterr()
  result, _ = trainer.train(_short(), str(workdir))
  out = capsys.readouterr().out
  assert "checkpoint" in out and "64 is unreadable" in out and "using the previous one" in out
  assert "72.orbax-checkpoint-tmp-1790000000 was not finished" in out
  assert "Resumed from" in out and "at step 56." in out
  assert (workdir / "checkpoints_unreadable" / "64").is_dir()
  h.assert_same_params(
    h.flat_params(source / "checkpoints"), h.flat_params(workdir / "checkpoints")
  )
  assert result["step"] == 64


def test_falling_back_to_the_checkpoint_an_allowed_change_started_from_needs_no_new_flag(
  tmp_path,
):
  import shutil  # pylint: disable=g-import-not-at-top

  workdir, keep = tmp_path / "run", {"checkpoint.keep": 10}
  trainer.train(_short(num_epochs=1, **keep), str(workdir))  # checkpoints 8 .. 32
  trainer.train(_short(num_epochs=2, **keep), str(workdir), allow_config_change=True)
  # The newer checkpoints lost (unreadable ones are moved aside so): step 32 is the newest,
  # saved under num_epochs=1, the change from which was allowed when the run resumed there.
  for step in (40, 48, 56, 64):
    shutil.rmtree(workdir / "checkpoints" / str(step))
  (workdir / "result.json").unlink()
  result, _ = trainer.train(_short(num_epochs=2, **keep), str(workdir))
  assert result["step"] == 64
  with pytest.raises(errors.UserError, match=r"num_epochs: 1 -> 3"):  # a new change still asks
    for step in (40, 48, 56, 64):
      shutil.rmtree(workdir / "checkpoints" / str(step))
    trainer.train(_short(num_epochs=3, **keep), str(workdir))


def test_rerunning_a_finished_run_keeps_its_result_and_writes_nothing(finished, capsys):
  workdir, first = finished
  before = {p: h for p, h in _hashes(workdir).items() if not p.endswith(".lock")}
  capsys.readouterr()
  again = trainer.train(_short(), str(workdir)).result
  assert again == first and "train_loss" in again and "test_accuracy" in again
  assert json.loads((workdir / "result.json").read_text()) == first
  out = capsys.readouterr().out
  assert "is finished (step 64); nothing to train." in out and "Resumed" not in out
  after = {p: h for p, h in _hashes(workdir).items() if not p.endswith(".lock")}
  assert after == before  # no new TensorBoard file, no rewritten config


def _hashes(directory):
  import hashlib  # pylint: disable=g-import-not-at-top

  return {
    str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.rglob("*") if p.is_file()
  }


def test_reading_programs_skip_a_damaged_newest_checkpoint_and_change_nothing(
  finished, tmp_path, capsys
):
  from tnjax.compression import load, serving  # pylint: disable=g-import-not-at-top
  from tnjax.compression.evaluate_export import evaluate_run  # pylint: disable=g-import-not-at-top

  source, _ = finished
  workdir = tmp_path / "run"
  import shutil  # pylint: disable=g-import-not-at-top

  shutil.copytree(source, workdir)
  (workdir / ".lock").unlink()
  for path in (workdir / "checkpoints" / "64").rglob("*"):
    if path.is_file() and path.stat().st_size > 0 and "state" in path.parts:
      if path.name != "_METADATA":
        path.write_bytes(path.read_bytes()[:5])
  before = _hashes(workdir)
  capsys.readouterr()
  model, config = load(str(workdir))  # tnjax.load: the newest intact step
  out = capsys.readouterr().out
  assert "checkpoints/64 is unreadable" in out and "using step 56" in out
  from flax import nnx  # pylint: disable=g-import-not-at-top

  saved = checkpoint_lib.model_arrays(workdir / "checkpoints", 56)
  for path, value in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    np.testing.assert_array_equal(np.asarray(value.get_value()), saved["/".join(map(str, path))])
  metrics = evaluate_run(str(workdir))  # evaluate (and so export's load) likewise
  assert 0.0 <= metrics["test_accuracy"] <= 1.0
  pipeline, arrays = serving.run_input_pipeline(str(workdir), config)
  assert serving.export_model(model, pipeline, arrays)
  with pytest.raises(
    errors.UserError, match=r"no checkpoint at step 7; its saved steps are 48, 56, 64"
  ):
    load(str(workdir), step=7)
  assert _hashes(workdir) == before  # nothing moved aside, nothing rewritten
