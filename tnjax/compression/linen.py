"""Compressing a Linen model: `compress_linen(module, variables, plan, *example_args)`.

Linen layers exist only while their parent runs, so the model is traced once on the
example arguments (shapes only, jax.eval_shape) with an interceptor that records every
nn.Dense, nn.DenseGeneral, nn.Conv and nn.Embed by its path in variables['params']
('Decoder/encoderdecoderblock_0/MlpBlock_0/Dense_0'). Each planned layer gets an NNX twin
holding its trained weights, the twins are compressed like any NNX model's layers
(tnjax.compression.compress_model), and the returned `apply_fn(variables, *args, **kw)`,
called exactly like `module.apply`, runs the model with an interceptor that sends each
planned layer's call to its factorised replacement. The replacement's parameters live in
variables['params'] at the layer's path (so optax trains them like any other), its
constants (a sketch's signs) in variables['tnjax_constants'].
"""

from __future__ import annotations

import warnings

import flax.linen as nn
import jax
from flax import nnx

from tnjax import errors
from tnjax.compression import budget as budget_lib
from tnjax.compression import plan_file
from tnjax.compression.convert import compress_model
from tnjax.compression.linen_twins import nnx_twin
from tnjax.compression.plan import matching

LINEN_LAYERS = (nn.Dense, nn.DenseGeneral, nn.Conv, nn.Embed)
LINEN_TYPES_TEXT = "nn.Dense, nn.DenseGeneral, nn.Conv or nn.Embed; nn.Einsum is not supported"
CONSTANTS = "tnjax_constants"
_LINEN_NAMES = {  # the twins' types, as a Linen user knows the layers
  "nnx.LinearGeneral": "nn.DenseGeneral",
  "nnx.Linear": "nn.Dense",
  "nnx.Conv": "nn.Conv",
  "nnx.Embed": "nn.Embed",
}


def _record_layers(module, variables, args, kwargs) -> tuple[dict, dict]:
  """{params path: the bound Linen layer} for every supported layer the call reaches
  (through __call__, or an nn.Embed's attend alone), and the same for flax's other
  layers (nn.ConvTranspose, nn.Einsum, ...), to name them when a plan does."""
  found, others = {}, {}

  def recorder(next_fun, call_args, call_kwargs, context):
    layer, path = context.module, "/".join(context.module.path)
    if context.method_name in ("__call__", "attend") and isinstance(layer, LINEN_LAYERS):
      found.setdefault(path, layer)
    elif context.method_name == "__call__" and path:  # flax's other layers, the user's blocks
      others.setdefault(path, layer)
    return next_fun(*call_args, **call_kwargs)

  with nn.intercept_methods(recorder):
    jax.eval_shape(lambda v: module.apply(v, *args, **kwargs), variables)
  return found, others


def _check_names_a_layer(pattern: str, layers: dict, others: dict) -> None:
  """A plan entry naming one of flax's layers tnjax cannot compress, or a block of the
  user's, says which it is."""
  if pattern not in others or pattern in layers:
    return
  module = others[pattern]
  if type(module).__module__.startswith("flax.linen"):
    raise errors.UserError(
      f"plan entry {pattern!r} is an nn.{type(module).__name__}, which tnjax cannot "
      f"compress; it compresses {LINEN_TYPES_TEXT}."
    )
  inside = [path for path in layers if path.startswith(f"{pattern}/")]
  raise errors.UserError(
    f"plan entry {pattern!r} is a {type(module).__name__}, not a layer; plan its layers "
    f"instead ('{pattern}/*' matches {', '.join(inside) or 'none of them'})."
  )


def _check_linen_arguments(module, variables, plan, example_args, example_kwargs) -> None:
  """What compress_linen needs, each missing piece one line: the unbound module, its
  variables with their 'params', a plan dict and one example call."""
  usage = "compress_linen(module, variables, plan, *example_args)"
  if not isinstance(module, nn.Module):
    raise errors.UserError(f"{usage}: module must be a Linen module, got {type(module).__name__}.")
  if not hasattr(variables, "keys") or "params" not in variables:
    raise errors.UserError(
      f"{usage}: variables must be what module.init returns ({{'params': ...}}, with "
      "'batch_stats' etc. if the model has them), not its 'params' alone."
    )
  if not isinstance(plan, dict) or not plan:
    raise errors.UserError(
      f"{usage}: the plan is a dict of layer path or glob -> spec, e.g. "
      "{'Dense_0': {'kind': 'lowrank', 'ratio': 4}}."
    )
  if not example_args and not example_kwargs:
    raise errors.UserError(
      f"{usage}: give one example call of the model after the plan (arrays or "
      "jax.ShapeDtypeStruct; only shapes are traced), so the layers it reaches can be found."
    )


def _subtree(params, path: str) -> dict:
  node = params
  for key in path.split("/"):
    node = node[key]
  return node


class _Twins(nnx.Module):
  def __init__(self, twins: dict):
    for name, twin in twins.items():
      setattr(self, name, twin)


def _key(entry) -> str:
  return str(getattr(entry, "key", getattr(entry, "name", getattr(entry, "idx", entry))))


def _as_tree(state) -> dict:
  """A replacement's state as nested dicts of arrays with string keys (Linen's layout)."""
  tree = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    keys = [_key(k) for k in path if _key(k) != "value"]
    node = tree
    for key in keys[:-1]:
      node = node.setdefault(key, {})
    node[keys[-1]] = leaf
  return tree


def _from_tree(template, tree):
  """The inverse of _as_tree, onto `template`'s structure."""
  leaves = []
  for path, _ in jax.tree_util.tree_leaves_with_path(template):
    node = tree
    for key in (_key(k) for k in path if _key(k) != "value"):
      node = node[key]
    leaves.append(node)
  return jax.tree.unflatten(jax.tree.structure(template), leaves)


def _arrays_at(path: str, template, scope, collection: str):
  """The replacement's arrays in the apply-time variables; variables from before the
  compression, or 'params' without the constants, are one line saying which to pass."""
  if collection not in scope:
    raise errors.UserError(
      f"apply_fn: the variables have no '{collection}' collection, which holds {path}'s "
      "fixed arrays; pass every collection compress_linen returned ({**new_variables, "
      "'params': params}), not {'params': ...} alone."
    )
  try:
    return _from_tree(template, scope[collection])
  except KeyError:
    raise errors.UserError(
      f"apply_fn: the variables at {path} hold {sorted(scope[collection])}, not its "
      "factorised arrays: pass the variables compress_linen returned, not the model's own."
    ) from None


def _linen_terms(message: str) -> str:
  """A message naming the twins' NNX types, as a Linen user knows the layers."""
  for nnx_type, linen_type in _LINEN_NAMES.items():
    message = message.replace(nnx_type, linen_type)
  return message


def _set(params: dict, path: str, value) -> dict:
  """A copy of nested `params` with the subtree at `path` replaced."""
  head, *rest = path.split("/")
  copy = dict(params)
  copy[head] = _set(params[head], "/".join(rest), value) if rest else value
  return copy


def _set_new(tree: dict, path: str, value) -> dict:
  """_set that creates the missing levels."""
  head, *rest = path.split("/")
  copy = dict(tree)
  copy[head] = _set_new(tree.get(head, {}), "/".join(rest), value) if rest else value
  return copy


def compress_linen(
  module: nn.Module, variables, plan: dict, *example_args, budget=None, **example_kwargs
):
  """(apply_fn, variables, rows): a Linen model with its planned layers factorised.

  Args:
    module: the Linen module (unbound).
    variables: its trained variables ({'params': ..., 'batch_stats': ...}).
    plan: layer path (as in variables['params'], '/'-joined) or glob -> spec, as
      compress_model takes it.
    *example_args, **example_kwargs: one call of the model as module.apply takes it
      (arrays or ShapeDtypeStructs, only shapes are traced; rngs=, method= and the model's
      own keywords such as deterministic= are passed on), to find its layers.
    budget: {'params': N} or {'ratio': R}, shared out by equal error (a budget measured on
      data needs an NNX model's forward: tnjax.compression.search).

  Returns:
    apply_fn(variables, *args, **kwargs), called exactly like module.apply (mutable=,
    rngs=, method= included) with the new variables; the new variables (the factors in
    'params'; fixed arrays, such as a sketch's, in 'tnjax_constants'); the report rows.
  """
  if budget is not None:
    budget = budget_lib.plain_budget(budget)
    budget_lib.check_budget(budget)
    if budget_lib.needs_search(budget):
      raise errors.UserError(
        f"compress_linen shares {{'params'}} / {{'ratio'}} budgets by equal error; {budget} is "
        "measured on data through an NNX model's forward (tnjax.compression.search)."
      )
  _check_linen_arguments(module, variables, plan, example_args, example_kwargs)
  variables = dict(variables)
  layers, others = _record_layers(module, variables, example_args, example_kwargs)
  if "" in layers:
    raise errors.UserError(
      f"compress_linen: the module is itself a layer (nn.{type(layers['']).__name__}); it "
      "replaces layers inside a model: wrap the layer in a parent nn.Module and plan its name."
    )
  params = variables["params"]
  plan_file.check_no_file_keys(
    plan, layers, "compress_linen(module, variables, layers_plan, *example_args, budget={...})"
  )
  # The twins are named by their Linen paths, so the plan, its globs, progress lines and
  # errors read as the user wrote them.
  twins = {}
  for pattern in plan:
    _check_names_a_layer(pattern, layers, others)
    for path in matching(pattern, layers, what="Linen layer", types=LINEN_TYPES_TEXT):
      try:
        twins.setdefault(path, nnx_twin(path, layers[path], _subtree(params, path)))
      except errors.UserError as refusal:  # a glob passes over a stacked layer, as in NNX
        if path in plan:
          raise
        warnings.warn(f"plan entry {pattern!r} leaves out {refusal}", stacklevel=2)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
      compressed, rows = compress_model(_Twins(twins), plan, budget=budget)
    except errors.UserError as e:  # name Linen's layer types, not the twins'
      raise errors.UserError(_linen_terms(str(e))) from None
  for warning in caught:  # likewise, and at the caller's line
    warnings.warn(_linen_terms(str(warning.message)), warning.category, stacklevel=2)
  replaced, constants = {}, dict(variables.get(CONSTANTS, {}))
  for path in (row["name"] for row in rows):
    graphdef, trained, fixed = nnx.split(getattr(compressed, path), nnx.Param, ...)
    replaced[path] = (graphdef, trained, fixed)
    params = _set(params, path, _as_tree(trained))
    if jax.tree.leaves(fixed):  # at the same path in their own collection
      constants = _set_new(constants, path, _as_tree(fixed))
  new_variables = {**variables, "params": params}
  if constants:
    new_variables[CONSTANTS] = constants

  def interceptor(next_fun, args, kwargs, context):
    path = "/".join(context.module.path)
    if path in replaced and context.method_name == "setup":
      return None  # nn.Embed declares its table in setup: the factors stand in for it
    if path not in replaced or context.method_name not in ("__call__", "attend"):
      return next_fun(*args, **kwargs)
    graphdef, trained, fixed = replaced[path]
    scope = context.module.variables
    layer = nnx.merge(
      graphdef,
      _arrays_at(path, trained, scope, "params"),
      _arrays_at(path, fixed, scope, CONSTANTS) if jax.tree.leaves(fixed) else fixed,
    )
    return getattr(layer, context.method_name)(*args, **kwargs)

  def apply_fn(variables, *args, **kwargs):
    with nn.intercept_methods(interceptor):
      return module.apply(variables, *args, **kwargs)

  return apply_fn, new_variables, rows
