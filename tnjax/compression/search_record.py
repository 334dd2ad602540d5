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

  def __init__(self, workdir, plan, budget, weights: dict | None = None, settings=None):
    self.path = None if workdir is None else fileio.workdir_path(workdir) / RECORD
    model = fingerprint(weights or {})
    self.state = {"plan": plan, "budget": budget, "model": model, "settings": settings}
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
      if saved.get("settings") and settings and saved["settings"] != settings:
        changed = ", ".join(
          f"--{k}={saved['settings'][k]} (now {v})"
          for k, v in settings.items()
          if saved["settings"].get(k) != v
        )
        raise errors.UserError(
          f"{self.path} holds a search measured with {changed}; rerun it with those, or "
          "give a new workdir for these."
        )
      self.state = {**saved, "model": saved.get("model") or model, "settings": settings}

  def update(self, **fields) -> None:
    self.state.update(fields)
    if self.path is not None:
      fileio.write_json(self.path, self.state)

  def measure(self, key: str, **values) -> None:
    measured = self.state.setdefault("measured", {})
    measured[key] = {**measured.get(key, {}), **values}
    self.update()


def fingerprint(weights: dict) -> dict:
  """{layer: [shape, Frobenius norm, projection]} of the planned layers' dense weights.

  Two trained models' norms can agree to 0.1% (FC-2 sources of two seeds did); their
  projections on a fixed random sign vector are independent draws of size ~norm, so
  they differ by about the norm, where another host's float rounding moves them by ~1e-6
  of it."""
  prints = {}
  for name, w in weights.items():
    w = np.asarray(w, np.float64).ravel()
    signs = np.random.default_rng(0).integers(0, 2, w.size) * 2.0 - 1.0
    prints[name] = [list(np.shape(weights[name])), float(np.linalg.norm(w)), float(w @ signs)]
  return prints


def _differing_layer(saved: dict | None, model: dict) -> str | None:
  """The first layer whose shape, norm or projection differs (within 1e-3 of the norm:
  another host's float rounding is the same model); None when they match or the record
  predates fingerprints."""
  if not saved:
    return None
  for name in sorted(set(saved) | set(model)):
    if name not in saved or name not in model:
      return name
    shape, norm, *projection = saved[name]
    now_shape, now_norm, now_projection = model[name]
    tolerance = 1e-3 * max(norm, now_norm) + 1e-12
    if list(shape) != list(now_shape) or abs(norm - now_norm) > tolerance:
      return name
    if projection and abs(projection[0] - now_projection) > tolerance:
      return name
  return None
