"""compress_model: a trained model's planned layers replaced by factorised ones fitted to
their trained weights (TT-SVD, CP-ALS, Tucker-2 HOSVD, truncated SVD, sketches, ADTN fits);
every other parameter is the source's, untouched."""

from __future__ import annotations

import contextlib
import sys
import threading
import time

import jax.numpy as jnp
from flax import nnx

from tnjax import errors
from tnjax.compression import budget as budget_lib
from tnjax.compression import size_knobs as knobs
from tnjax.compression import sizing
from tnjax.compression.plan import resolve_plan
from tnjax.nn import layer_rows, registry, spec_from_config
from tnjax.nn.densify import layer_at, replace_layer


@knobs.remembered_sizes()
def compress_model(
  model: nnx.Module,
  plan: dict,
  *,
  budget=None,
  validation=None,
  workdir=None,
  example_input=None,
  fit: bool = True,
  seed=0,
):
  """(compressed copy of `model`, one report row per compressed layer); `tnjax.compress`.

  Args:
    model: a trained model (it is not changed): any NNX module. Its nnx.Linear, nnx.Conv,
      nnx.LinearGeneral, nnx.Einsum and nnx.Embed layers and tnjax's own layers can be
      planned (`layers_of(model)` lists them); everything else is copied untouched.
    plan: layer name or glob -> spec dict (tnjax.compression.plan); sizes may be given as
      `error` or `ratio`, or left to `budget`.
    budget: {'params': N} or {'ratio': R} over the planned layers, shared out by
      `budget_lib.allocate_budget` (equal relative error); with 'allocate': 'sensitivity', or
      {'accuracy_drop': D} / {'latency_ms': T}, sizes are searched on `validation`
      (tnjax.compression.Validation; `workdir` keeps the search for a resume).
    example_input: an input (or ShapeDtypeStruct) whose batch decides each layer's
      execution path, shown in the rows.
    fit: False builds each planned layer with its format's own initialisation (keys from
      `seed`) instead of fitting it: the compressed architecture, to train from scratch.

  Returns:
    (compressed, rows): a copy of `model` with the planned layers replaced, and one dict
    per replaced layer: name, format, shape, weights before / after, compression,
    relative reconstruction error of the weight (`relative_error`), the resolved spec (what
    config.model.layers takes to build the same model) and the execution path.
  """
  if budget is not None:
    budget = budget_lib.plain_budget(budget)
    budget_lib.check_budget(budget)
  if budget is not None and budget_lib.needs_search(budget):
    from tnjax.compression import rank_search  # pylint: disable=g-import-not-at-top

    found = rank_search.search(
      model, plan, budget, validation, workdir=workdir, example_input=example_input
    )
    return found.model, found.rows
  model = nnx.clone(model)
  entries = resolve_plan(model, plan)
  weights = {e.name: jnp.asarray(e.layer.to_dense()) for e in entries}
  if budget is not None:
    specs = budget_lib.allocate_budget(entries, weights, budget)
  else:
    specs = {}
    for e in entries:
      with _named_errors(e):
        specs[e.name] = sizing.size_spec(e, weights[e.name])
  rows = []
  for entry in entries:
    with _named_errors(entry):
      new = build_replacement(entry, specs[entry.name], weights[entry.name], fit=fit, seed=seed)
    install(model, entry, new)
    rows.append(layer_report(entry.name, entry.layer, new))
  if example_input is not None:
    paths = {r["name"]: r["path"] for r in layer_rows(model, example_input)}
    for row in rows:
      row["path"] = paths.get(row["name"].replace("/", "."), "-")
  return model, rows


def build_replacement(entry, spec: dict, weight, *, fit: bool = True, seed: int = 0):
  """The factorized layer `spec` (sizes resolved) describes for `entry`: fitted to its
  trained `weight`, or (fit=False) at its format's own initialisation."""
  spec = spec_from_config(_bias_as_source(entry, spec))
  cls = registry.layer_class(entry.family, spec.kind)
  bias = _bias(entry.layer) if spec.use_bias else None
  # The factors keep the trained weight's dtype (float64 sources stay exact).
  kwargs = {**knobs.layer_kwargs(entry.layer), "param_dtype": weight.dtype}
  if not fit:
    return cls._for_weight(weight, spec, rngs=nnx.Rngs(seed), **kwargs)
  with _said_if_slow(f"fitting {entry.name} ({spec.kind} {_sizes(spec)})"):
    return cls.from_dense(weight, bias, spec, rngs=nnx.Rngs(0), **kwargs)


@contextlib.contextmanager
def _named_errors(entry):
  """A spec the layer cannot take (TT-ranks for another number of cores, ...) as one line
  naming the layer; the layer classes raise ValueError without knowing the plan."""
  try:
    yield
  except ValueError as e:
    if isinstance(e, errors.UserError):
      raise
    raise errors.UserError(f"{entry.name}: {e}") from None


def install(model, entry, new) -> None:
  """Puts `new` where `entry`'s layer is in `model` (in place): at every attribute that
  holds that layer, so a layer shared between two places (tied weights) stays shared."""
  wrap = getattr(entry.layer, "wrap", None)  # a user's LinearGeneral / Einsum: reshapes
  new = wrap(new) if wrap else new
  source = layer_at(model, entry.path)
  for path in list(paths_to(model, source)) or [entry.path]:
    replace_layer(model, path, new)


def paths_to(node, target, path=(), seen=None):
  """Every attribute path from `node` to the object `target` (nnx.iter_modules gives a
  shared module once, at its first path)."""
  seen = set() if seen is None else seen
  if id(node) in seen:
    return
  seen.add(id(node))
  if isinstance(node, (nnx.List, list, tuple)):
    children = enumerate(node)
  elif isinstance(node, nnx.Module):
    children = ((k, v) for k, v in vars(node).items() if not k.startswith("_"))
  else:
    return
  for key, value in children:
    if value is target:
      yield path + (key,)
    elif isinstance(value, (nnx.Module, list, tuple)):
      yield from paths_to(value, target, path + (key,), seen)


@contextlib.contextmanager
def _said_if_slow(what: str, first: float = 3.0, every: float = 30.0):
  """A fit (CP-ALS at a large rank, say) that runs past `first` seconds says so on stderr
  (as progress bars do), and again every `every` seconds: a long conversion is never silent."""
  start, done = time.perf_counter(), threading.Event()

  def report():
    wait = first
    while not done.wait(wait):
      print(
        f"  {what}: running for {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True
      )
      wait = every

  thread = threading.Thread(target=report, daemon=True)
  thread.start()
  try:
    yield
  finally:
    done.set()
    thread.join()
    if time.perf_counter() - start >= first:
      print(f"  {what}: done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


def _sizes(spec) -> str:
  return ", ".join(f"{f}={getattr(spec, f)}" for f in type(spec).size_fields) or "full"


def _bias(layer):
  bias = layer.bias
  if bias is None:
    return None
  return bias[...] if hasattr(bias, "get_value") or hasattr(bias, "value") else bias


def _bias_as_source(entry, spec: dict) -> dict:
  """A user layer's replacement has a bias exactly when the user's layer has one (unless
  the plan says use_bias); tnjax's own layers keep their specs' default."""
  if hasattr(entry.layer, "options") and "use_bias" not in entry.spec:
    return {**spec, "use_bias": entry.layer.bias is not None}
  return spec


def layer_report(name: str, source, new) -> dict:
  return {
    "name": name,
    "format": new.spec.kind,
    "shape": new.shape_description,
    "weights_before": int(source.weight_params),
    "weights_after": int(new.weight_params),
    "compression": source.weight_params / new.weight_params,
    "relative_error": float(new.fit_error) if new.fit_error is not None else float("nan"),
    "spec": _plain(new.spec.to_config()),
  }


def _plain(value):
  """JSON- and ConfigDict-ready: tuples stay tuples, numpy scalars become Python numbers."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return tuple(_plain(v) for v in value)
  if hasattr(value, "item"):
    return value.item()
  return value
