"""Metric sinks: JSONL records and wandb in offline mode (no login, no network)."""

import os

import ml_collections
import pytest

from tnjax import writers


def wandb_config(mode):
  return ml_collections.ConfigDict(
    {"wandb": {"mode": mode, "project": "tnjax-test", "entity": "", "name": "", "group": ""}}
  )


def test_jsonl_records_are_appended_in_order(tmp_path):
  writer = writers.MetricWriter(str(tmp_path), wandb_config("disabled"))
  writer.write(1, {"loss": 2.5})
  writer.write(2, {"loss": 1.5, "test_accuracy": 0.75})
  writer.close()
  records = writers.read_metrics(str(tmp_path))
  assert [(r["step"], r["loss"]) for r in records] == [(1, 2.5), (2, 1.5)]
  assert records[1]["test_accuracy"] == 0.75


def test_wandb_offline_writes_locally_and_keeps_its_run_id(tmp_path, monkeypatch):
  monkeypatch.delenv("WANDB_MODE", raising=False)  # the config decides, not the test env
  for _ in range(2):  # a resumed job reuses the run id stored in the workdir
    writer = writers.MetricWriter(str(tmp_path), wandb_config("offline"))
    writer.write(1, {"loss": 1.0})
    writer.close()
  run_id = (tmp_path / "wandb_run_id.txt").read_text().strip()
  runs = [d for d in os.listdir(tmp_path / "wandb") if d.startswith("offline-run-")]
  assert runs and all(d.endswith(run_id) for d in runs)


def test_unknown_wandb_mode_is_rejected(tmp_path):
  with pytest.raises(ValueError, match="config.wandb.mode='cloud' is unknown"):
    writers.MetricWriter(str(tmp_path), wandb_config("cloud"))
