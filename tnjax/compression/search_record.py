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

  Two trained models' norms can agree to 0.1% (FC-2 sources of two seeds did), so each
  layer also keeps 4,096 of its entries (fixed positions) projected on fixed random signs
  and scaled to unit norm: two models' projections differ by about 1, another host's float
  rounding moves one by about 1e-6 (and a 100M-weight layer costs no extra memory)."""
  prints = {}
  for name, w in weights.items():
    flat = np.asarray(w, np.float64).ravel()
    rng = np.random.default_rng(0)
    picked = flat[rng.integers(0, flat.size, 4096)]
    signs = rng.choice((-1.0, 1.0), picked.size)
    projection = float(picked @ signs / (np.linalg.norm(picked) + 1e-30))
    prints[name] = [list(np.shape(w)), float(np.linalg.norm(flat)), projection]
  return prints


def _differing_layer(saved: dict | None, model: dict) -> str | None:
  """The first layer whose shape, norm or projection differs (beyond 1e-3, relative for the
  norm: another host's float rounding is the same model); None when they match or the
  record predates fingerprints."""
  if not saved:
    return None
  for name in sorted(set(saved) | set(model)):
    if name not in saved or name not in model:
      return name
    shape, norm, *projection = saved[name]
    now_shape, now_norm, now_projection = model[name]
    if list(shape) != list(now_shape) or abs(norm - now_norm) > 1e-3 * max(norm, now_norm):
      return name
    if projection and abs(projection[0] - now_projection) > 1e-3:
      return name
  return None
