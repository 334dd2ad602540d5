"""A rank search's record, WORKDIR/search.json: what it measured, kept so that a killed
search resumes where it stopped."""

from __future__ import annotations

import json

import numpy as np

from tnjax import errors, fileio

RECORD = "search.json"


def key(specs: dict) -> str:
  """A spec dict (or plan, budget) as a canonical string: the record's keys."""
  return json.dumps(specs, sort_keys=True)


class SearchRecord:
  """search.json in the workdir: the plan, budget and every measurement, rewritten whole
  (atomically) after each, so that a killed search resumes; in memory without a workdir."""

  def __init__(self, workdir, plan, budget, weights: dict | None = None):
    self.path = None if workdir is None else fileio.workdir_path(workdir) / RECORD
    model = fingerprint(weights or {})
    self.state = {"plan": plan, "budget": budget, "model": model}
    if self.path is not None and self.path.exists():
      saved = fileio.read_json(self.path)
      if key(saved.get("plan")) != key(plan) or key(saved.get("budget")) != key(budget):
        raise errors.UserError(
          f"{self.path} holds a search for plan {saved.get('plan')} and budget "
          f"{saved.get('budget')}; give a new workdir for this one."
        )
      other = _differing_layer(saved.get("model"), model)
      if other is not None:
        raise errors.UserError(
          f"{self.path} holds a search of another model (its layer {other!r} differs from "
          "this model's); give a new workdir for this one."
        )
      self.state = {**saved, "model": saved.get("model") or model}

  def update(self, **fields) -> None:
    self.state.update(fields)
    if self.path is not None:
      fileio.write_json(self.path, self.state)

  def measure(self, key: str, **values) -> None:
    measured = self.state.setdefault("measured", {})
    measured[key] = {**measured.get(key, {}), **values}
    self.update()


def fingerprint(weights: dict) -> dict:
  """{layer: [shape, Frobenius norm]} of the planned layers' dense weights: enough to tell
  another model's measurements from this one's."""
  return {
    name: [list(w.shape), float(np.linalg.norm(np.asarray(w, np.float64)))]
    for name, w in weights.items()
  }


def _differing_layer(saved: dict | None, model: dict) -> str | None:
  """The first layer whose shape or norm differs (norms within 1e-3: another host's float
  rounding is the same model); None when they match or the record predates fingerprints."""
  if not saved:
    return None
  for name in sorted(set(saved) | set(model)):
    if name not in saved or name not in model:
      return name
    (shape, norm), (now_shape, now_norm) = saved[name], model[name]
    if list(shape) != list(now_shape) or not np.isclose(norm, now_norm, rtol=1e-3, atol=1e-12):
      return name
  return None
