"""Compressing the user's own Flax NNX models: plain nnx.Linear / Conv / LinearGeneral /
Einsum / Embed layers found, fitted and replaced; at full rank the copy computes what the
source computes (float64); the copy trains with the user's own loop and round-trips
through Orbax; what cannot be compressed is one line."""

import contextlib
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn
from flax import nnx

import tnjax
from tnjax import errors
from tnjax.compression import layers_of
from tnjax.nn import TTDense, TTSpec


class UserModel(nnx.Module):
  """A model as a user writes it, touching every supported layer type."""

  def __init__(self, rngs, dtype=jnp.float64):
    kw = dict(param_dtype=dtype, rngs=rngs)
    self.embed = nnx.Embed(24, 6, **kw)
    self.conv = nnx.Conv(3, 8, (3, 3), strides=2, padding="VALID", kernel_dilation=1, **kw)
    self.norm = nnx.LayerNorm(8, **kw)
    self.proj = nnx.LinearGeneral((3, 8), (2, 5), axis=(-2, -1), **kw)  # over (W, C)
    self.heads = nnx.Einsum("bhf,fnk->bhnk", (10, 2, 3), (2, 3), **kw)
    self.merge = nnx.Einsum("bhnk,nkd->bhd", (2, 3, 6), None, **kw)
    self.fc = nnx.Linear(6, 4, use_bias=False, **kw)
    self.dropout = nnx.Dropout(0.0, rngs=rngs)

  def __call__(self, images, ids):
    x = self.norm(self.conv(images))  # (b, 3, 3, 8)
    x = self.proj(x).reshape(x.shape[0], 3, 10)  # (b, 3, 2, 5) -> (b, h=3, f=10)
    x = self.merge(self.heads(x))  # (b, 3, 6)
    x = x + self.embed(ids)[:, None, :]
    return self.fc(self.dropout(x)).sum(axis=1)


FULL_RANK = {  # every replacement exact; full rank stores more than dense, so allowed
  "embed": {
    "kind": "tt_embedding",
    "ranks": 100,
    "vocab_shape": (4, 6),
    "feature_shape": (2, 3),
    "order": 2,
    "allow_growth": True,
  },
  "conv": {"kind": "tucker", "in_rank": 3, "out_rank": 8, "allow_growth": True},
  "proj": {"kind": "lowrank", "rank": 10, "allow_growth": True},
  "heads": {
    "kind": "tt",
    "ranks": 100,
    "in_shape": (2, 5),
    "out_shape": (2, 3),
    "allow_growth": True,
  },
  "merge": {"kind": "lowrank", "rank": 6, "allow_growth": True},
  "fc": {"kind": "lowrank", "rank": 4, "allow_growth": True},
}


def _inputs(batch=3):
  rng = np.random.default_rng(0)
  return jnp.asarray(rng.normal(size=(batch, 7, 7, 3))), jnp.asarray(rng.integers(0, 24, batch))


def test_every_supported_layer_is_listed_with_its_shape_and_weights(x64):
  rows = {r["path"]: r for r in layers_of(UserModel(nnx.Rngs(0)))}
  assert sorted(rows) == ["conv", "embed", "fc", "heads", "merge", "proj"]
  assert rows["conv"]["type"] == "nnx.Conv" and rows["conv"]["shape"] == "3x3x3x8"
  assert rows["proj"]["weights"] == 3 * 8 * 2 * 5 and rows["proj"]["family"] == "dense"
  assert rows["heads"]["layout"] == "bhf,fnk->bhnk: kernel as (f, nk)"
  assert rows["embed"]["family"] == "embed"


def test_a_full_rank_plan_reproduces_the_users_model_in_float64(x64):
  model = UserModel(nnx.Rngs(0))
  images, ids = _inputs()
  small, rows = tnjax.compress(model, FULL_RANK)
  assert sorted(r["name"] for r in rows) == sorted(FULL_RANK)
  assert all(r["relative_error"] < 1e-9 for r in rows), [
    (r["name"], r["relative_error"]) for r in rows
  ]
  np.testing.assert_allclose(small(images, ids), model(images, ids), rtol=1e-9, atol=1e-10)
  assert isinstance(model.conv, nnx.Conv)  # the source is not changed
  assert isinstance(small.norm, nnx.LayerNorm) and small.norm is not model.norm  # copied, untouched
  np.testing.assert_array_equal(small.norm.scale[...], model.norm.scale[...])
  # Back to the user's own layer types, exactly.
  np.testing.assert_allclose(
    small.proj.to_linear_general().kernel[...], model.proj.kernel[...], atol=1e-12
  )
  np.testing.assert_allclose(
    small.heads.to_einsum().kernel[...], model.heads.kernel[...], atol=1e-12
  )
  np.testing.assert_allclose(
    small.embed.to_embed().embedding[...], model.embed.embedding[...], atol=1e-12
  )
  np.testing.assert_allclose(small.conv.to_conv().kernel[...], model.conv.kernel[...], atol=1e-12)


def test_flax_attention_runs_with_its_projections_compressed(x64):
  # nnx.MultiHeadAttention calls its LinearGeneral projections with out_sharding=...; the
  # factorised stand-ins take it, and at full rank the attention is unchanged.
  attention = nnx.MultiHeadAttention(
    num_heads=2, in_features=8, decode=False, param_dtype=jnp.float64, rngs=nnx.Rngs(0)
  )
  plan = {
    f"{name}": {"kind": "lowrank", "rank": 8, "allow_growth": True}
    for name in ("query", "key", "value", "out")
  }
  small, rows = tnjax.compress(attention, plan)
  assert len(rows) == 4
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 8)))
  np.testing.assert_allclose(small(x), attention(x), rtol=1e-9, atol=1e-10)
  np.testing.assert_allclose(small.query(x, out_sharding=None), attention.query(x), atol=1e-10)
  with pytest.raises(ValueError, match=r"computes 'bhf,fnk->bhnk'; called with 'bhf,fnk->bnk'"):
    tnjax.compress(UserModel(nnx.Rngs(0)), {"heads": {"kind": "lowrank", "ratio": 1.5}})[0].heads(
      jnp.ones((1, 3, 10)), "bhf,fnk->bnk"
    )


def test_a_compressed_model_trains_in_the_users_own_loop_and_round_trips_through_orbax(tmp_path):
  ocp = pytest.importorskip("orbax.checkpoint")
  model = UserModel(nnx.Rngs(0), dtype=jnp.float32)
  small, _ = tnjax.compress(
    model,
    {
      "proj": {"kind": "lowrank", "rank": 2},
      "fc": {"kind": "tt", "ranks": 2, "allow_growth": True},
    },
  )
  images, ids = _inputs(8)
  targets = jnp.zeros((8, 4))
  optimizer = nnx.Optimizer(small, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(images, ids) - targets) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  losses = [float(step(small, optimizer)) for _ in range(20)]
  assert losses[-1] < 0.5 * losses[0]
  graphdef, state = nnx.split(small)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(tmp_path / "state", state)
  checkpointer.wait_until_finished()
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  restored = nnx.merge(graphdef, checkpointer.restore(tmp_path / "state", abstract))
  np.testing.assert_array_equal(restored(images, ids), small(images, ids))


def _tripled_dot_general(*args, **kwargs):
  return 3 * jax.lax.dot_general(*args, **kwargs)


class _Block(nnx.Module):
  def __init__(self, rngs):
    self.fc = nnx.Linear(4, 4, rngs=rngs)


class Unsupported(nnx.Module):
  def __init__(self, rngs):
    self.grouped = nnx.Conv(4, 4, (3, 3), feature_group_count=2, rngs=rngs)
    self.line = nnx.Conv(4, 4, (3,), rngs=rngs)
    self.batched = nnx.Einsum("bnd,ndk->bnk", (2, 4, 3), rngs=rngs)
    self.diagonal = nnx.Einsum("bsd,ddh->bsh", (3, 3, 4), rngs=rngs)
    self.own_dot = nnx.Linear(4, 4, dot_general=_tripled_dot_general, rngs=rngs)
    self.wide_sum = nnx.Linear(4, 4, preferred_element_type=jnp.float32, rngs=rngs)
    self.per_batch = nnx.LinearGeneral(4, 3, batch_axis={0: 2}, rngs=rngs)
    self.deconv = nnx.ConvTranspose(4, 4, (3, 3), rngs=rngs)
    self.block = _Block(rngs)


@pytest.mark.parametrize(
  "name, message",
  [
    ("grouped", r"grouped: nnx.Conv is grouped \(feature_group_count=2\); it cannot be compressed"),
    ("line", r"line: nnx.Conv is 1-D"),
    ("batched", r"batched: nnx.Einsum 'bnd,ndk->bnk': .*'n' is batched over the kernel"),
    ("missing", r"'missing' matches no layer; the model's layers are batched, block/fc, diag"),
    ("diagonal", r"^diagonal: nnx.Einsum 'bsd,ddh->bsh': the kernel repeats axis d"),
    ("own_dot", r"^own_dot: nnx.Linear sets dot_general, which a factorised layer does not call"),
    ("wide_sum", r"^wide_sum: nnx.Linear sets preferred_element_type, which a factorised"),
    ("per_batch", r"^per_batch: nnx.LinearGeneral has batch axes \{0: 2\}"),  # not "stacked"
    ("deconv", r"'deconv' is of type nnx.ConvTranspose, not a layer tnjax compresses; tnjax co"),
    (
      "block",
      r"'block' is of type _Block, .*; plan its layers instead \('block/\*' matches block/fc",
    ),
  ],
)
def test_what_cannot_be_compressed_is_one_line_naming_it(name, message):
  with pytest.raises(errors.UserError, match=message):
    tnjax.compress(Unsupported(nnx.Rngs(0)), {name: {"kind": "lowrank", "rank": 1}})


def test_a_linear_general_over_axes_listed_out_of_order_reproduces_its_source(x64):
  # nnx.LinearGeneral sorts `axis`: its kernel's input axes meet the input's in their order.
  rngs = nnx.Rngs(0)
  for layer, shape in (
    (nnx.LinearGeneral((4, 5), 6, axis=(-1, -2), param_dtype=jnp.float64, rngs=rngs), (2, 4, 5)),
    (
      nnx.LinearGeneral((3, 5), (2, 2), axis=(3, 1), param_dtype=jnp.float64, rngs=rngs),
      (2, 3, 7, 5),
    ),
  ):
    model = _Block(rngs)
    model.fc = layer
    full_rank = min(np.prod(layer.in_features), np.prod(layer.out_features))  # 20x6, 15x4
    small, _ = tnjax.compress(
      model, {"fc": {"kind": "lowrank", "rank": int(full_rank), "allow_growth": True}}
    )
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape))
    np.testing.assert_allclose(small.fc(x), layer(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(small.fc.to_linear_general()(x), layer(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
  "kind, spec", [("tt", {"ranks": 8}), ("lowrank", {"rank": 8}), ("cp", {"rank": 8})]
)
def test_every_dense_format_comes_from_and_goes_back_to_an_nnx_linear(kind, spec, x64):
  from tnjax.nn import registry, spec_from_config

  linear = nnx.Linear(16, 12, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
  cls = registry.layer_class("dense", kind)
  layer = cls.from_linear(linear, spec_from_config({"kind": kind, **spec}))
  back = layer.to_linear()
  assert isinstance(back, nnx.Linear) and back.kernel.shape == (16, 12)
  np.testing.assert_allclose(back.kernel[...], layer.to_dense(), atol=1e-12)
  np.testing.assert_allclose(back.bias[...], linear.bias[...], atol=0)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 16)))
  np.testing.assert_allclose(back(x), layer(x), rtol=1e-9, atol=1e-10)


def test_a_layer_from_a_users_layer_keeps_its_bias_or_its_lack_and_takes_only_fit_options():
  from tnjax.nn import CPConv, TTDense, TTSpec, TuckerSpec

  plain = nnx.Linear(16, 12, use_bias=False, rngs=nnx.Rngs(0))
  for spec in (None, TTSpec(ranks=4), {"ranks": 4}):  # a spec's default use_bias=True
    layer = TTDense.from_linear(plain, spec)
    assert layer.bias is None and layer.to_linear().bias is None
  conv = nnx.Conv(4, 6, (3, 3), use_bias=False, rngs=nnx.Rngs(0))
  from tnjax.nn import TuckerConv

  assert TuckerConv.from_conv(conv, TuckerSpec(in_rank=2, out_rank=3)).bias is None
  with pytest.raises(
    ValueError, match=r"TTDense.from_linear takes the fit options \['eps'\] .*not \['ratio'\]"
  ):
    TTDense.from_linear(plain, ratio=10)
  with pytest.raises(ValueError, match=r"CPConv.from_conv takes the fit options \['n_iter'\]"):
    CPConv.from_conv(conv, {"rank": 2}, error=0.1)


def test_every_conv_format_comes_from_and_goes_back_to_an_nnx_conv(x64):
  from tnjax.nn import registry, spec_from_config

  conv = nnx.Conv(
    4,
    6,
    (3, 3),
    strides=(2, 1),
    padding=((1, 0), (2, 1)),
    param_dtype=jnp.float64,
    rngs=nnx.Rngs(0),
  )
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 9, 9, 4)))
  # Full-rank sizes, so the round trip is exact (CP-ALS, sketches and ADTN fits are not).
  full = {"dense": {}, "tt": {"ranks": 100}, "tucker": {"in_rank": 4, "out_rank": 6}}
  for kind, sizes in full.items():
    spec = spec_from_config({"kind": kind, **sizes})
    with pytest.warns(UserWarning) if kind == "tt" else contextlib.nullcontext():  # clipped
      layer = registry.layer_class("conv", kind).from_conv(conv, spec)
    back = layer.to_conv()
    assert isinstance(back, nnx.Conv) and back.strides == (2, 1)
    np.testing.assert_allclose(back(x), layer(x), rtol=1e-8, atol=1e-9, err_msg=kind)


def test_a_sized_tt_layer_reports_the_clipped_ranks_it_stores_and_fits_without_warnings():
  """A ratio's uniform TT-rank above an edge bond's maximum is stored clipped: the report
  names the per-bond ranks actually stored, and no candidate fit warns about clipping."""
  model = nnx.Sequential(nnx.Linear(784, 128, rngs=nnx.Rngs(0)))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    small, rows = tnjax.compress(model, {"layers/0": {"kind": "tt", "ratio": 1.5}})
  stored = tuple(small.layers[0].ranks[1:-1])
  assert rows[0]["spec"]["ranks"] == stored and len(set(stored)) > 1, stored
  assert rows[0]["weights_after"] == small.layers[0].weight_params <= 784 * 128 / 1.5
  conv = nnx.Sequential(nnx.Conv(64, 64, (3, 3), rngs=nnx.Rngs(0)))  # TT convs alike
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    small, rows = tnjax.compress(conv, {"layers/0": {"kind": "tt", "ratio": 4}})
  bonds = tuple(int(core.shape[0]) for core in small.layers[0].cores[1:])
  ranks = rows[0]["spec"]["ranks"]
  assert (ranks,) * len(bonds) == bonds if isinstance(ranks, int) else ranks == bonds
  assert rows[0]["weights_after"] == small.layers[0].weight_params <= 64 * 64 * 9 / 4


class _Planted(nnx.Module):
  """A dense and a conv layer whose trained weights are low rank plus noise."""

  def __init__(self):
    rng = np.random.default_rng(0)
    self.fc = nnx.Linear(128, 96, rngs=nnx.Rngs(0))
    self.conv = nnx.Conv(32, 48, (3, 3), rngs=nnx.Rngs(1))
    weight = rng.normal(size=(128, 6)) @ rng.normal(size=(6, 96))
    self.fc.kernel.set_value(jnp.asarray(weight + 0.05 * rng.normal(size=weight.shape)))
    core, u, v = rng.normal(size=(3, 3, 4, 6)), rng.normal(size=(32, 4)), rng.normal(size=(48, 6))
    kernel = np.einsum("hwab,ia,ob->hwio", core, u, v)
    self.conv.kernel.set_value(jnp.asarray(kernel + 0.05 * rng.normal(size=kernel.shape)))


def test_vbmf_sizes_lowrank_and_tucker_layers_at_the_ranks_their_weights_hold():
  plan = {"fc": {"kind": "lowrank", "vbmf": True}, "conv": {"kind": "tucker", "vbmf": True}}
  small, rows = tnjax.compress(_Planted(), plan)
  specs = {r["name"]: r["spec"] for r in rows}
  assert specs["fc"]["rank"] == 6 and (specs["conv"]["in_rank"], specs["conv"]["out_rank"]) == (
    4,
    6,
  )
  assert small.fc.rank == 6 and all(r["relative_error"] < 0.05 for r in rows)
  # The sensitivity ladder starts the search there too: the EVBMF size is one of its rungs.
  from tnjax.compression import plan as plan_lib, sensitivity  # pylint: disable=g-import-not-at-top

  model = _Planted()
  (entry,) = plan_lib.resolve_plan(model, {"fc": {"kind": "lowrank"}})
  ladder = sensitivity.ladder_specs(entry, jnp.asarray(model.fc.kernel[...]))
  ranks = [spec["rank"] for spec in ladder]
  assert 6 in ranks and ranks == sorted(ranks, reverse=True)


@pytest.mark.parametrize(
  "entry, message",
  [
    ({"kind": "tt", "vbmf": True}, "sizes formats whose sizes are matrix ranks"),
    ({"kind": "lowrank", "vbmf": 1}, "vbmf=1 must be True"),
    ({"kind": "lowrank", "vbmf": True, "ratio": 3}, "give one of ratio, vbmf, not 2"),
  ],
)
def test_vbmf_mistakes_are_one_line(entry, message):
  with pytest.raises(errors.UserError, match=message):
    tnjax.compress(_Planted(), {"fc": entry})


def test_a_plan_that_would_grow_an_already_compressed_layer_is_one_line():
  # `ratio` counts against the dense weight: ratio 2 of a 64x64 layer is 2,048 weights,
  # far more than the TT layer it would replace stores.
  model = tnjax.models.build_model(
    {"name": "fc2", "hidden_features": 64, "layers": {"hidden": {"kind": "tt", "ranks": 2}}},
    (8, 8, 1),
    10,
    rngs=nnx.Rngs(0),
  )
  now = model.hidden.weight_params
  with pytest.raises(errors.UserError, match=rf"stores 2,048 weights, more than the {now:,}"):
    tnjax.compress(model, {"hidden": {"kind": "lowrank", "ratio": 2}})
  grown, rows = tnjax.compress(
    model, {"hidden": {"kind": "lowrank", "ratio": 2, "allow_growth": True}}
  )
  assert rows[0]["weights_after"] == 2048 and grown.hidden.weight_params == 2048
  _, rows = tnjax.compress(model, {"hidden": {"kind": "lowrank", "ratio": 4096 / now + 1}})
  assert rows[0]["weights_after"] <= now
  with pytest.raises(errors.UserError, match=r"allows the planned layers 2,048 weights, more than"):
    tnjax.compress(model, {"hidden": {"kind": "lowrank"}}, budget={"ratio": 2})
  # An explicit size is held to the same bar: rank 16 stores 2,048 weights (fewer than the
  # dense 4,096, so the dense-layer check passes) but more than the TT layer does now.
  with pytest.raises(
    errors.UserError, match=rf"rank=16 stores 2,048 weights, more than the {now:,}"
  ):
    tnjax.compress(model, {"hidden": {"kind": "lowrank", "rank": 16}})
  _, rows = tnjax.compress(model, {"hidden": {"kind": "lowrank", "rank": 16, "allow_growth": True}})
  assert rows[0]["weights_after"] == 2048


class _LinenNet(nn.Module):  # a user's own Linen model: its module is not flax.linen
  @nn.compact
  def __call__(self, x):
    return nn.Dense(4)(x)


@pytest.mark.parametrize(
  "source, hint",
  [
    ("runs/fc2", r"\(got str\); for a trained run, pass its model: .*tnjax.load\('runs/fc2'\)"),
    (nn.Dense(4), r"\(got Dense\); for a Linen module use tnjax.compression.compress_linen"),
    (_LinenNet(), r"\(got _LinenNet\); for a Linen module use tnjax.compression.compress_linen"),
    ({"params": {}}, r"\(got dict\); for a Linen module use tnjax.compression.compress_linen"),
  ],
)
def test_a_run_path_or_a_linen_module_in_place_of_the_model_is_one_line(source, hint):
  with pytest.raises(errors.UserError, match=hint):
    tnjax.compress(source, {"hidden": {"kind": "lowrank", "ratio": 4}})
  with pytest.raises(errors.UserError, match=hint):
    layers_of(source)


def test_a_run_path_where_a_model_belongs_and_a_text_step_are_one_line(tmp_path):
  with pytest.raises(ValueError, match="densify takes an NNX module, got str"):
    tnjax.nn.densify("runs/fc2")
  with pytest.raises(ValueError, match="format_table takes an NNX module, got str"):
    tnjax.nn.format_table("runs/fc2")
  with pytest.raises(errors.UserError, match=r"step='8' must be a whole number"):
    tnjax.load(str(tmp_path), step="8")


def test_a_budget_is_met_down_to_each_formats_smallest_size_and_one_that_compresses_nothing_is_one_line():
  model = tnjax.models.build_model(
    {"name": "fc2", "hidden_features": 64}, (8, 8, 1), 10, rngs=nnx.Rngs(0)
  )
  # TT's smallest size (all ranks 1) is far below what TT-SVD's error bound gives at error
  # ~1, and a budget reaches it: the sizes shrink steadily as the allowed weights do.
  after = []
  for params in (2000, 500, 100):
    _, (row,) = tnjax.compress(model, {"hidden": {"kind": "tt"}}, budget={"params": params})
    assert row["weights_after"] <= params
    after.append(row["weights_after"])
  assert after == sorted(after, reverse=True)
  with pytest.raises(errors.UserError, match=r"the smallest take \d+\); raise the budget"):
    tnjax.compress(model, {"hidden": {"kind": "tt"}}, budget={"params": 10})
  with pytest.raises(
    errors.UserError, match=r"not fewer than their dense 4,096: it would compress"
  ):
    tnjax.compress(model, {"hidden": {"kind": "lowrank"}}, budget={"params": 10**6})


def test_an_error_target_on_a_conv_is_met_or_refused_in_one_line():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.conv = nnx.Conv(16, 32, (3, 3), rngs=rngs)

  model = Net(nnx.Rngs(0))
  # TT's ranks count the kernel's spatial core (9 taps), so a TT conv reaches any error.
  for error in (0.5, 0.0):
    _, (row,) = tnjax.compress(
      model, {"conv": {"kind": "tt", "error": error, "allow_growth": True}}
    )
    assert row["relative_error"] <= error + 1e-5
  # Tucker-2's in_rank stops at the 16 in-channels while its out_rank goes on to 32.
  _, (row,) = tnjax.compress(
    model, {"conv": {"kind": "tucker", "error": 0.05, "allow_growth": True}}
  )
  assert row["relative_error"] <= 0.05 and row["weights_after"] == 16 * 32 * 9 + 16 * 16 + 32 * 32
  with pytest.raises(errors.UserError, match=r"at in_rank=16, out_rank=24, the largest size that"):
    tnjax.compress(model, {"conv": {"kind": "tucker", "error": 0.3}})


class _TwoLinear(nnx.Module):
  def __init__(self, rngs):
    self.fc1, self.fc2 = nnx.Linear(64, 32, rngs=rngs), nnx.Linear(32, 10, rngs=rngs)


@pytest.mark.parametrize(
  "plan, message",
  [
    ({"fc1": {"kind": "tt", "ratio": 4, "ranks": 3}}, r"'fc1': ratio chooses the size, so ranks=3"),
    ({"fc1": {"kind": "tt", "ranks": (4, 4)}}, r"^fc1: ranks must be one int or \d per-bond"),
    ({"layers": {"fc1": {"kind": "tt"}}, "budget": {"ratio": 4}}, r"plan key 'layers' belongs to"),
    ({"fc*": {"kind": "tt"}, "budget": {"ratio": 4}}, r"budget=\{\.\.\.\}\)\.$"),
    ({"fc1": {"kind": "dense"}}, r"^fc1: dense has no size to choose and stores 2,048 weights"),
  ],
)
def test_plan_mistakes_from_python_are_one_line_naming_the_layer(plan, message):
  with pytest.raises(errors.UserError, match=message):
    tnjax.compress(_TwoLinear(nnx.Rngs(0)), plan)


def test_a_later_plan_entry_wins_for_a_layer_several_match():
  _, rows = tnjax.compress(
    _TwoLinear(nnx.Rngs(0)),
    {"fc1": {"kind": "tt", "ratio": 2}, "fc*": {"kind": "lowrank", "ratio": 2}},
  )
  assert [r["format"] for r in rows] == ["lowrank", "lowrank"]


def test_a_layer_shared_by_two_attributes_stays_shared_when_compressed():
  class Tied(nnx.Module):
    def __init__(self, rngs):
      self.a = nnx.Linear(64, 64, rngs=rngs)
      self.b = self.a  # weight tying: one layer, two names
      self.layers = nnx.List([self.a])

    def __call__(self, x):
      return self.b(nnx.relu(self.a(x)))

  small, (row,) = tnjax.compress(Tied(nnx.Rngs(0)), {"a": {"kind": "lowrank", "ratio": 2}})
  assert small.a is small.b and small.layers[0] is small.a
  params = sum(x.size for x in jax.tree.leaves(nnx.state(small, nnx.Param)))
  assert row["weights_after"] == 2048 and params == 2048 + 64  # one factorised layer, one bias


def test_layers_stacked_by_vmap_are_one_line_and_a_glob_passes_over_them():
  class Blocks(nnx.Module):
    def __init__(self, rngs):
      @nnx.split_rngs(splits=4)
      @nnx.vmap(in_axes=(0,), out_axes=0)
      def make(rngs):
        return nnx.Linear(64, 128, rngs=rngs)

      self.blocks = make(rngs)
      self.head = nnx.Linear(64, 10, rngs=rngs)

  model = Blocks(nnx.Rngs(0))
  note = {r["path"]: r.get("note", "") for r in layers_of(model)}["blocks"]
  assert "holds 4 stacked kernels of shape (64, 128) (layers made by nnx.vmap" in note
  with pytest.raises(errors.UserError, match=r"^blocks: nnx.Linear holds 4 stacked kernels"):
    tnjax.compress(model, {"blocks": {"kind": "lowrank", "ratio": 2}})
  with pytest.warns(UserWarning, match=r"plan entry '\*' leaves out blocks: nnx.Linear holds 4"):
    _, rows = tnjax.compress(model, {"*": {"kind": "lowrank", "ratio": 2}})
  assert [r["name"] for r in rows] == ["head"]


def test_a_tt_error_target_takes_far_fewer_weights_than_tt_svds_bound_and_meets_it(x64):
  """TT-SVD's eps bound gives every bond the same share of the error; the target is met
  with fewer weights, and one the bound would refuse (not compressing) is met."""

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.fc = nnx.Linear(64, 48, rngs=rngs)

  rng = np.random.default_rng(1)
  u, _ = np.linalg.qr(rng.normal(size=(64, 48)))
  v, _ = np.linalg.qr(rng.normal(size=(48, 48)))
  model = Net(nnx.Rngs(0))
  model.fc.kernel.value = jnp.asarray((u * np.arange(1, 49) ** -1.0) @ v.T)
  for error in (0.25, 0.4):
    bound = TTDense.from_dense(model.fc.kernel.value, None, TTSpec(ranks=100), eps=error)
    _, (row,) = tnjax.compress(model, {"fc": {"kind": "tt", "error": error}})
    assert row["relative_error"] <= error
    assert row["weights_after"] < 0.8 * bound.weight_params, (row["spec"], bound.spec)
    assert row["weights_after"] < 64 * 48  # the bound's 3,952 at 0.25 would not compress


def test_a_misspelt_plan_field_lists_the_plan_fields_beside_the_formats():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.fc = nnx.Linear(16, 16, rngs=rngs)

  with pytest.raises(
    errors.UserError, match=r"no field\(s\) \['ratios'\].* also takes error, ratio, vbmf"
  ):
    tnjax.compress(Net(nnx.Rngs(0)), {"fc": {"kind": "lowrank", "ratios": 2}})


def test_a_plan_naming_a_shared_layers_second_path_says_which_name_to_use():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.shared = nnx.Linear(16, 16, rngs=rngs)
      self.alias = self.shared

  model = Net(nnx.Rngs(0))
  assert [row["path"] for row in layers_of(model)] == ["alias"]
  with pytest.raises(errors.UserError, match=r"'shared' names the layer also held as 'alias'"):
    tnjax.compress(model, {"shared": {"kind": "lowrank", "rank": 2}})


def test_layers_of_a_compressed_model_counts_what_each_layer_stores_now():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.fc = nnx.Linear(64, 48, rngs=rngs)

  before = layers_of(Net(nnx.Rngs(0)))
  assert [(r["weights"], r["dense_weights"]) for r in before] == [(3072, 3072)]
  small, (row,) = tnjax.compress(Net(nnx.Rngs(0)), {"fc": {"kind": "lowrank", "rank": 2}})
  after = layers_of(small)
  assert [(r["weights"], r["dense_weights"]) for r in after] == [(2 * (64 + 48), 3072)]
  assert row["weights_after"] == after[0]["weights"]


def test_a_layer_of_another_family_or_of_linen_given_to_from_linear_is_one_line():
  from flax import linen  # pylint: disable=g-import-not-at-top

  from tnjax.nn import LowRankDense, TTEmbed  # pylint: disable=g-import-not-at-top

  embed, linear = nnx.Embed(8, 4, rngs=nnx.Rngs(0)), nnx.Linear(4, 4, rngs=nnx.Rngs(0))
  with pytest.raises(TypeError, match=r"from_linear takes an nnx.Linear, got nnx.Embed; each"):
    LowRankDense.from_linear(embed)
  with pytest.raises(TypeError, match=r"from_embed takes an nnx.Embed, got nnx.Linear"):
    TTEmbed.from_embed(linear)
  with pytest.raises(
    TypeError, match=r"got nn.Dense; compress a Linen model with .*compress_linen"
  ):
    LowRankDense.from_linear(linen.Dense(4))
  # Layer by layer as in a plan: an option the factorised layer would not call is refused.
  own_dot = nnx.Linear(4, 4, dot_general=_tripled_dot_general, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"^LowRankDense.from_linear: the nnx.Linear sets dot_gen"):
    LowRankDense.from_linear(own_dot)


def test_size_searches_fit_no_size_a_budget_or_error_target_cannot_use(monkeypatch):
  from tnjax.tensor import cp as cp_lib  # pylint: disable=g-import-not-at-top

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.fc1, self.fc2 = nnx.Linear(64, 48, rngs=rngs), nnx.Linear(48, 16, rngs=rngs)

  model, fitted = Net(nnx.Rngs(0)), []
  real_als = cp_lib.cp_als

  def recording_als(tensor, rank, **kwargs):
    fitted.append((np.size(tensor), rank))
    return real_als(tensor, rank, **kwargs)

  monkeypatch.setattr(cp_lib, "cp_als", recording_als)
  plan = {"fc*": {"kind": "cp"}}
  _, rows = tnjax.compress(model, plan, budget={"params": 600})
  assert sum(r["weights_after"] for r in rows) <= 600
  # A layer's share is at most 600 less the other layer at rank 1; no larger rank is fitted.
  per_rank = {r["name"]: r["weights_after"] / r["spec"]["rank"] for r in rows}
  share = {
    64 * 48: (600 - per_rank["fc2"]) // per_rank["fc1"],
    48 * 16: (600 - per_rank["fc1"]) // per_rank["fc2"],
  }
  assert fitted and all(rank <= share[size] for size, rank in fitted), (fitted, share)
  # An error target fits the largest compressing rank only when no smaller rank meets it.
  fitted.clear()
  _, (row,) = tnjax.compress(model, {"fc2": {"kind": "cp", "error": 0.9}})
  largest = max(rank for _, rank in fitted)
  compressing = (48 * 16 - 1) // (row["weights_after"] // row["spec"]["rank"])
  assert row["relative_error"] <= 0.9 and largest < compressing
  _, (below,) = tnjax.compress(model, {"fc2": {"kind": "cp", "rank": row["spec"]["rank"] - 1}})
  assert below["relative_error"] > 0.9  # the rank found is the smallest that meets it


def test_a_budget_is_spent_when_one_layer_reaches_its_largest_size_first():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.fc1, self.fc2 = nnx.Linear(256, 128, rngs=rngs), nnx.Linear(128, 10, rngs=rngs)

  # BTT on 128x10 compresses at rank 1 only: it stays there while fc1 takes what is left.
  plan = {"fc1": {"kind": "lowrank"}, "fc2": {"kind": "btt"}}
  _, rows = tnjax.compress(Net(nnx.Rngs(0)), plan, budget={"ratio": 1.3})
  allowed = (256 * 128 + 128 * 10) / 1.3
  used = sum(r["weights_after"] for r in rows)
  assert 0.95 * allowed <= used <= allowed, (used, allowed)
  with pytest.raises(errors.UserError, match=r"lower the ratio to at most \d"):
    tnjax.compress(Net(nnx.Rngs(0)), plan, budget={"ratio": 1000})


def test_a_tt_error_target_stores_no_more_than_the_smallest_uniform_rank_within_it():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.fc = nnx.Linear(784, 256, rngs=rngs)

  model = Net(nnx.Rngs(0))
  _, (row,) = tnjax.compress(model, {"fc": {"kind": "tt", "error": 0.9}})
  assert row["relative_error"] <= 0.9
  uniform = lambda rank: tnjax.compress(model, {"fc": {"kind": "tt", "ranks": rank}})[1][0]  # noqa: E731
  smallest = next(r for r in range(26, 40) if uniform(r)["relative_error"] <= 0.9)
  assert uniform(smallest - 1)["relative_error"] > 0.9
  assert row["weights_after"] <= uniform(smallest)["weights_after"], (row, smallest)


def test_numpy_and_jax_scalars_size_a_plan_and_a_budget_as_python_numbers_do():
  model = _TwoLinear(nnx.Rngs(0))
  weights = lambda rows: [r["weights_after"] for r in rows]  # noqa: E731
  as_python = tnjax.compress(model, {"fc*": {"kind": "lowrank"}}, budget={"params": 1500})[1]
  as_numpy = tnjax.compress(model, {"fc*": {"kind": "lowrank"}}, budget={"params": np.int64(1500)})
  assert weights(as_numpy[1]) == weights(as_python)
  plan = {"fc1": {"kind": "lowrank", "ratio": 4}, "fc2": {"kind": "lowrank", "error": 0.5}}
  numpy_plan = {
    "fc1": {"kind": "lowrank", "ratio": np.int64(4)},
    "fc2": {"kind": "lowrank", "error": jnp.asarray(0.5)},
  }
  assert weights(tnjax.compress(model, plan)[1]) == weights(tnjax.compress(model, numpy_plan)[1])


def test_a_size_target_out_of_reach_says_what_would_reach_it():
  model = _TwoLinear(nnx.Rngs(0))
  # error 0 is exact but for float32 round-off: full rank, with allow_growth (10 x 42 > 320).
  _, (row,) = tnjax.compress(model, {"fc2": {"kind": "lowrank", "error": 0, "allow_growth": True}})
  assert row["spec"]["rank"] == 10 and row["relative_error"] < 1e-6
  # A sketch's fit error stays above 1 (worse than storing nothing): no `error` below 1 helps.
  with pytest.raises(errors.UserError, match=r"the error is 1\.\d+; choose another format") as e:
    tnjax.compress(model, {"fc2": {"kind": "sketch", "error": 0.5}})
  assert "raise `error`" not in str(e.value)
  with pytest.raises(errors.UserError, match=r"the error is 0\.\d+; raise `error` to at least 0\."):
    tnjax.compress(model, {"fc2": {"kind": "lowrank", "error": 0.001}})
  # ADTN weights are trained, not fitted: a budget points to sizing it on its own.
  with pytest.raises(
    errors.UserError, match=r"^fc1: adtn .* compress it first in a plan of its own"
  ):
    tnjax.compress(
      model, {"fc1": {"kind": "adtn"}, "fc2": {"kind": "lowrank"}}, budget={"ratio": 2}
    )


@pytest.mark.parametrize("kind", ["lowrank", "btt"])
def test_svd_formats_size_from_one_svd_without_fitting_candidates(kind, monkeypatch):
  from tnjax.nn import registry  # pylint: disable=g-import-not-at-top

  model, fits = _TwoLinear(nnx.Rngs(0)), []
  cls = registry.layer_class("dense", kind)
  real_fit = cls._fit
  monkeypatch.setattr(cls, "_fit", lambda self, w: fits.append(self.spec.rank) or real_fit(self, w))
  _, (row,) = tnjax.compress(model, {"fc1": {"kind": kind, "error": 0.5, "allow_growth": True}})
  assert fits == [row["spec"]["rank"]] and row["relative_error"] <= 0.5  # only the chosen one
  smaller = {"kind": kind, "rank": row["spec"]["rank"] - 1, "allow_growth": True}
  assert tnjax.compress(model, {"fc1": smaller})[1][0]["relative_error"] > 0.5
  fits.clear()
  _, rows = tnjax.compress(model, {"fc*": {"kind": kind}}, budget={"ratio": 1.5})
  assert sorted(fits) == sorted(r["spec"]["rank"] for r in rows)
  assert sum(r["weights_after"] for r in rows) <= (64 * 32 + 32 * 10) / 1.5


def test_closed_form_sizing_still_fits_bfloat16_and_names_nans():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.fc = nnx.Linear(48, 40, param_dtype=jnp.bfloat16, rngs=rngs)

  model = Net(nnx.Rngs(0))
  # bfloat16 factors round away more than the SVD's tail: the target is refused, and the
  # error the refusal names (rounded up) is met.
  plan = {"fc": {"kind": "lowrank", "error": 0.001, "allow_growth": True}}
  with pytest.raises(errors.UserError, match=r"raise `error` to at least (0\.\d+),") as refusal:
    tnjax.compress(model, plan)
  enough = float(re.search(r"at least (0\.\d+),", str(refusal.value)).group(1))
  _, (row,) = tnjax.compress(model, {"fc": dict(plan["fc"], error=enough)})
  assert row["relative_error"] <= enough
  model.fc.kernel[...] = model.fc.kernel[...].at[0, 0].set(jnp.nan)
  with pytest.raises(errors.UserError, match=r"holds 1 NaN"):
    tnjax.compress(model, {"fc": {"kind": "lowrank", "error": 0.5}})


def test_a_ratio_sizes_an_adtn_no_deeper_than_the_studies_best_depth():
  # 128x128 at ratio 2 allows 8,192 weights, room for M = 39 (16 M (Q-1) + 1 with Q = 14);
  # depth costs time in proportion, and the studies' best is M = 8.
  model = nnx.Sequential(nnx.Linear(128, 128, rngs=nnx.Rngs(0)))
  _, (row,) = tnjax.compress(model, {"layers/0": {"kind": "adtn", "ratio": 2}}, fit=False)
  assert row["spec"]["layers"] == 8
  assert row["weights_after"] == 16 * 8 * (14 - 1) + 1  # gates and the output scale
