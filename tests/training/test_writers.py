"""Metric sinks: JSONL records and wandb in offline mode (no login, no network)."""

import os
import re

import ml_collections

from tnjax.training import writers


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
  # wandb names a run's directory offline-run-<time>-<id>, adding "-1" when a resumed run
  # starts within the same second as the last one: the id, not the clock, is what is kept.
  pattern = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{re.escape(run_id)}(-\d+)?")
  assert len(runs) == 2 and all(pattern.fullmatch(d) for d in runs), runs
