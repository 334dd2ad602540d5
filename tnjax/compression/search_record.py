"""A rank search's record, WORKDIR/search.json: what it measured, kept so that a killed
search resumes where it stopped."""

from __future__ import annotations

import json

from tnjax import errors, fileio

RECORD = "search.json"


def key(specs: dict) -> str:
  """A spec dict (or plan, budget) as a canonical string: the record's keys."""
  return json.dumps(specs, sort_keys=True)


class SearchRecord:
  """search.json in the workdir: the plan, budget and every measurement, rewritten whole
  (atomically) after each, so that a killed search resumes; in memory without a workdir."""

  def __init__(self, workdir, plan, budget):
    self.path = None if workdir is None else fileio.workdir_path(workdir) / RECORD
    self.state = {"plan": plan, "budget": budget}
    if self.path is not None and self.path.exists():
      saved = fileio.read_json(self.path)
      if key(saved.get("plan")) != key(plan) or key(saved.get("budget")) != key(budget):
        raise errors.UserError(
          f"{self.path} holds a search for plan {saved.get('plan')} and budget "
          f"{saved.get('budget')}; give a new workdir for this one."
        )
      self.state = saved

  def update(self, **fields) -> None:
    self.state.update(fields)
    if self.path is not None:
      fileio.write_json(self.path, self.state)

  def measure(self, key: str, **values) -> None:
    measured = self.state.setdefault("measured", {})
    measured[key] = {**measured.get(key, {}), **values}
    self.update()
