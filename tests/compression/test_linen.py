"""Compressing a Linen model: compress_linen's apply_fn is called like module.apply, equals it
at full rank (float64), and is jit- and grad-able; its plans name Linen paths."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tnjax import errors
from tnjax.compression import compress_linen


class Block(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.Dense(12, param_dtype=jnp.float64)(x)
    return nn.DenseGeneral((2, 3), param_dtype=jnp.float64)(jax.nn.relu(x)).reshape(
      *x.shape[:-1], 6
    )


class LinenModel(nn.Module):
  """Conv, BatchNorm, a nested block, a tied embedding: as published Flax models write them."""

  @nn.compact
  def __call__(self, images, ids, train: bool = False):
    embed = nn.Embed(20, 6, param_dtype=jnp.float64)
    x = nn.Conv(4, (3, 3), strides=2, padding="VALID", param_dtype=jnp.float64)(images)
    x = nn.BatchNorm(use_running_average=not train, param_dtype=jnp.float64)(x)
    x = Block(name="block")(x.reshape(x.shape[0], -1))
    x = x + embed(ids)
    return embed.attend(x)


def _setup():
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.normal(size=(3, 7, 7, 2)))
  ids = jnp.asarray(rng.integers(0, 20, 3))
  model = LinenModel()
  variables = model.init(jax.random.key(0), images, ids)
  return model, variables, images, ids


FULL_RANK = {
  "Conv_0": {"kind": "tt", "ranks": 100, "allow_growth": True},
  "block/Dense_0": {"kind": "lowrank", "rank": 12, "allow_growth": True},
  "block/DenseGeneral_0": {"kind": "lowrank", "rank": 6, "allow_growth": True},
  "Embed_0": {
    "kind": "tt_embedding",
    "ranks": 100,
    "vocab_shape": (4, 5),
    "feature_shape": (2, 3),
    "order": 2,
    "allow_growth": True,
  },
}


def test_apply_fn_equals_module_apply_at_full_rank(x64):
  model, variables, images, ids = _setup()
  apply_fn, small, rows = compress_linen(model, variables, FULL_RANK, images, ids)
  assert sorted(r["name"] for r in rows) == sorted(FULL_RANK)
  assert all(r["relative_error"] < 1e-9 for r in rows)
  expected = model.apply(variables, images, ids)
  np.testing.assert_allclose(apply_fn(small, images, ids), expected, rtol=1e-9, atol=1e-10)
  # Called exactly like module.apply: mutable collections come back the same way.
  out, updates = apply_fn(small, images, ids, train=True, mutable=["batch_stats"])
  ref, ref_updates = model.apply(variables, images, ids, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-10)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9), updates, ref_updates)
  assert "kernel" not in small["params"]["block"]["Dense_0"]  # replaced by the factors


def test_apply_fn_is_jit_and_grad_able():
  model, variables, images, ids = _setup()
  variables = jax.tree.map(lambda x: x.astype(jnp.float32), variables)
  plan = {"block/Dense_0": {"kind": "lowrank", "rank": 2}}
  apply_fn, small, _ = compress_linen(model, variables, plan, images, ids)
  loss = lambda params: jnp.mean(apply_fn({**small, "params": params}, images, ids) ** 2)
  grads = jax.jit(jax.grad(loss))(small["params"])
  factors = grads["block"]["Dense_0"]
  assert set(factors) >= {"u", "v"} and float(jnp.abs(factors["u"]).sum()) > 0


def test_a_plan_entry_naming_no_linen_layer_lists_them():
  model, variables, images, ids = _setup()
  with pytest.raises(errors.UserError, match=r"'Dense_0' matches no Linen layer; .* block/Dense_0"):
    compress_linen(model, variables, {"Dense_0": {"kind": "lowrank", "rank": 2}}, images, ids)


def test_a_mistake_in_a_plan_entry_names_the_linen_path():
  model, variables, images, ids = _setup()
  with pytest.raises(
    errors.UserError, match=r"^plan entry 'block/Dense_0': .*no field\(s\) \['in_rank'\]"
  ):
    compress_linen(model, variables, {"block/Dense_0": {"kind": "cp", "in_rank": 2}}, images, ids)
  with pytest.raises(errors.UserError, match=r"^Conv_0: ranks must be one int"):
    compress_linen(model, variables, {"Conv_0": {"kind": "tt", "ranks": (2,) * 7}}, images, ids)


def test_each_missing_or_misplaced_argument_is_one_line():
  model, variables, images, ids = _setup()
  plan = {"block/Dense_0": {"kind": "lowrank", "rank": 2}}
  cases = [
    ((model, variables, plan), "give one example call of the model after the plan"),
    ((model, variables["params"], plan, images, ids), "not its 'params' alone"),
    ((model, variables, "block/Dense_0", images, ids), "the plan is a dict of layer path"),
    ((variables, model, plan, images, ids), "module must be a Linen module, got dict"),
    (
      (model, variables, {"layers": plan, "budget": {"ratio": 2}}, images, ids),
      r"plan key 'layers' belongs to .* layers_plan, \*example_args, budget=\{\.\.\.\}\)",
    ),
  ]
  for args, message in cases:
    with pytest.raises(errors.UserError, match=message):
      compress_linen(*args)


def test_apply_fn_given_the_wrong_variables_says_which_to_pass():
  model, variables, images, ids = _setup()
  plan = {"block/Dense_0": {"kind": "sketch", "sketch_size": 2}}  # fixed arrays: constants
  apply_fn, small, _ = compress_linen(model, variables, plan, images, ids)
  np.testing.assert_allclose(
    apply_fn(small, images, ids), apply_fn({**small}, images, ids), rtol=0, atol=0
  )
  with pytest.raises(errors.UserError, match=r"^apply_fn: the variables at block/Dense_0 hold"):
    apply_fn(variables, images, ids)  # the model's own, from before
  with pytest.raises(errors.UserError, match=r"no 'tnjax_constants' collection.* not \{'params'"):
    apply_fn({"params": small["params"], "batch_stats": small["batch_stats"]}, images, ids)


def test_a_globs_warning_names_the_linen_layer_at_the_callers_line():
  class Grouped(nn.Module):
    @nn.compact
    def __call__(self, h):
      return nn.Conv(4, (3, 3), feature_group_count=2)(nn.Conv(4, (3, 3))(h))

  model, h = Grouped(), jnp.ones((1, 5, 5, 2))
  with pytest.warns(UserWarning, match=r"leaves out Conv_0: nn.Conv is grouped") as caught:
    _, _, rows = compress_linen(
      model, model.init(jax.random.key(0), h), {"Conv_*": {"kind": "cp", "rank": 2}}, h
    )
  assert [r["name"] for r in rows] == ["Conv_1"]  # the grouped one is built first
  assert any(w.filename == __file__ for w in caught), [w.filename for w in caught]


class _ScannedLayer(nn.Module):
  @nn.compact
  def __call__(self, h, _):
    return h + nn.Dense(4)(h), None


class _Scanned(nn.Module):
  """Layers stacked by nn.scan (T5X, big_vision, MaxText): one kernel array for all."""

  @nn.compact
  def __call__(self, h):
    scanned = nn.scan(
      _ScannedLayer, variable_axes={"params": 0}, split_rngs={"params": True}, length=3
    )
    h, _ = scanned(name="layers")(nn.Dense(4, name="inp")(h), None)
    return nn.Conv(2, (1, 1), padding="CIRCULAR", name="head")(h[:, None, None, :])


def test_stacked_bare_and_unsupported_layers_are_one_line_in_linen_terms():
  x = jnp.ones((2, 8))
  model = _Scanned()
  variables = model.init(jax.random.key(0), x)
  _, _, (row,) = compress_linen(model, variables, {"inp": {"kind": "lowrank", "rank": 1}}, x)
  assert row["name"] == "inp" and row["weights_after"] == 8 + 4
  with pytest.raises(errors.UserError, match=r"^layers/Dense_0: its kernel has shape \(3, 4, 4\)"):
    compress_linen(model, variables, {"layers/Dense_0": {"kind": "lowrank", "rank": 1}}, x)
  # A glob passes over what it cannot compress (stacked, circular), as in an NNX model.
  with pytest.warns(UserWarning, match=r"'\*' leaves out layers/Dense_0: its kernel"):
    _, _, rows = compress_linen(model, variables, {"*": {"kind": "lowrank", "rank": 1}}, x)
  assert [row["name"] for row in rows] == ["inp"]
  with pytest.raises(errors.UserError, match=r"^head: nn.Conv has padding='CIRCULAR'"):
    compress_linen(model, variables, {"head": {"kind": "tucker", "in_rank": 1}}, x)
  bare = nn.Dense(4)
  with pytest.raises(errors.UserError, match=r"the module is itself a layer \(nn.Dense\)"):
    compress_linen(bare, bare.init(jax.random.key(0), x), {"x": {"kind": "lowrank"}}, x)

  class WithEinsum(nn.Module):
    @nn.compact
    def __call__(self, h):
      return nn.Einsum((8, 4), "bi,io->bo")(h)

  einsum = WithEinsum()
  with pytest.raises(errors.UserError, match=r"none \(no nn.Dense, .*nn.Einsum is not supported"):
    compress_linen(einsum, einsum.init(jax.random.key(0), x), {"E*": {"kind": "lowrank"}}, x)


class _Mixed(nn.Module):
  """Layers a plan may name that tnjax must refuse, and ones it must read as stored."""

  @nn.compact
  def __call__(self, h):
    f64 = dict(param_dtype=jnp.float64)
    tied = nn.Embed(20, 6, name="tied", **f64)  # reached through attend alone
    swapped = nn.DenseGeneral(6, axis=(-1, -2), name="swapped", **f64)(h.reshape(-1, 2, 3))
    h = nn.Dense(6, name="plain", **f64)(h) + swapped
    h = h + nn.Dense(6, dot_general=lambda *a, **k: 3 * jax.lax.dot_general(*a, **k), name="own")(h)
    h = h + nn.DenseGeneral(6, batch_dims=(0,), name="batched")(h)
    h = h + nn.Conv(6, 3, name="line")(h[:, None, :])[:, 0]
    h = h + nn.ConvTranspose(6, (1,), name="deconv")(h[:, None, :])[:, 0]
    return tied.attend(h)


def test_linen_layers_out_of_order_as_stored_or_refused_are_right_or_one_line(x64):
  model = _Mixed()
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6)), jnp.float32)
  variables = model.init(jax.random.key(0), x)
  # Stored as float32 though declared float64 (cast for serving): computed as stored.
  variables = jax.tree.map(lambda v: v.astype(jnp.float32), variables)
  plan = {
    "swapped": {"kind": "lowrank", "rank": 6, "allow_growth": True},
    "plain": {"kind": "lowrank", "rank": 6, "allow_growth": True},
    "tied": FULL_RANK["Embed_0"],  # the same 20x6 table shape
  }
  apply_fn, small, _ = compress_linen(model, variables, plan, x)
  expected = model.apply(variables, x)
  assert apply_fn(small, x).dtype == expected.dtype == jnp.float32
  np.testing.assert_allclose(apply_fn(small, x), expected, rtol=1e-5, atol=1e-5)
  refusals = {
    "own": r"^own: nn.Dense sets dot_general, which a factorised layer does not call",
    "batched": r"^batched: nn.DenseGeneral with batch_dims cannot be compressed",
    "line": r"^line: nn.Conv is 1-D",
    "deconv": r"^plan entry 'deconv' is an nn.ConvTranspose, which tnjax cannot compress",
  }
  for name, message in refusals.items():
    with pytest.raises(errors.UserError, match=message):
      compress_linen(model, variables, {name: {"kind": "lowrank", "rank": 1}}, x)
  model, variables, images, ids = _setup()  # a block of the user's, named as if a layer
  with pytest.raises(errors.UserError, match=r"'block' is a Block, not a layer; plan its layers"):
    compress_linen(model, variables, {"block": {"kind": "lowrank", "rank": 1}}, images, ids)
