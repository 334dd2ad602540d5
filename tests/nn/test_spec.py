"""Layer specs: config round trips, list-to-tuple freezing, and field validation."""

import ml_collections
import pytest

from tnjax.nn import CPSpec, DenseSpec, LowRankSpec, TTSpec, spec_from_config
from tnjax.nn.init import target_variance

SPECS = [
  DenseSpec(),
  DenseSpec(use_bias=False, init="he_normal"),
  TTSpec(),
  TTSpec(ranks=8, in_shape=(4, 8, 8, 4), out_shape=(4, 8, 8, 4)),
  TTSpec(ranks=(2, 3, 2), in_shape=(1, 2, 5, 1), out_shape=(3, 1, 2, 2), init="lecun_normal"),
  TTSpec(ranks=3, order=6, use_bias=False),
  LowRankSpec(rank=3),
  CPSpec(rank=5, init="he_normal"),
]


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_spec_survives_a_config_round_trip(spec):
  config = spec.to_config()
  assert config["kind"] == spec.kind
  assert spec_from_config(config) == spec


def test_spec_from_config_returns_a_spec_unchanged():
  spec = LowRankSpec(rank=2)
  assert spec_from_config(spec) is spec


def test_lists_in_configs_become_tuples_so_specs_stay_hashable():
  spec = spec_from_config(
    {"kind": "tt", "ranks": [2, 3], "in_shape": [2, 3, 4], "out_shape": [5, 1, 2]}
  )
  assert spec == TTSpec(ranks=(2, 3), in_shape=(2, 3, 4), out_shape=(5, 1, 2))
  assert isinstance(spec.ranks, tuple) and isinstance(spec.in_shape, tuple)
  assert hash(spec) == hash(TTSpec(ranks=(2, 3), in_shape=(2, 3, 4), out_shape=(5, 1, 2)))


def test_spec_from_config_reads_a_config_dict():
  config = ml_collections.ConfigDict(
    {"kind": "tt", "ranks": 4, "in_shape": (4, 8), "out_shape": (2, 5)}
  )
  assert spec_from_config(config) == TTSpec(ranks=4, in_shape=(4, 8), out_shape=(2, 5))


def test_unset_fields_take_the_dataclass_defaults():
  assert spec_from_config({"kind": "tt"}) == TTSpec()
  assert spec_from_config({"kind": "dense", "use_bias": False}) == DenseSpec(use_bias=False)


@pytest.mark.parametrize(
  "make, message",
  [
    (lambda: TTSpec(ranks=0), r"TTSpec.ranks must be >= 1, got 0"),
    (lambda: TTSpec(ranks=(2, 0, 2)), r"TTSpec.ranks must be >= 1, got \(2, 0, 2\)"),
    (lambda: TTSpec(order=0), r"TTSpec.order must be >= 1"),
    (lambda: TTSpec(in_shape=(4, 4), out_shape=(4, 4, 4)), "different lengths"),
    (lambda: TTSpec(in_shape=(4, 4)), "give both in_shape and out_shape"),
    (lambda: TTSpec(in_shape=(4, 0), out_shape=(4, 4)), r"TTSpec.in_shape must hold positive"),
    (lambda: TTSpec(in_shape=(), out_shape=()), r"TTSpec.in_shape must hold positive"),
    (lambda: LowRankSpec(rank=0), r"LowRankSpec.rank must be >= 1, got 0"),
    (lambda: CPSpec(rank=-1), r"CPSpec.rank must be >= 1, got -1"),
    (lambda: DenseSpec(init="xavier"), r"DenseSpec.init='xavier' is unknown"),
    (lambda: TTSpec(init="uniform"), r"TTSpec.init='uniform' is unknown"),
    (lambda: target_variance("xavier", 4, 4), r"Unknown init 'xavier'"),
    (lambda: spec_from_config({"kind": "tucker9"}), r"Unknown layer kind 'tucker9'"),
    (lambda: spec_from_config({"kind": "tt", "rank": 4}), r"has no field\(s\) \['rank'\]"),
    (lambda: spec_from_config({"ranks": 4}), "with a 'kind' key"),
    (lambda: spec_from_config("tt"), "with a 'kind' key"),
  ],
)
def test_bad_specs_raise_errors_naming_the_field(make, message):
  with pytest.raises(ValueError, match=message):
    make()


@pytest.mark.parametrize(
  "init, variance",
  [("glorot_normal", 2 / (300 + 100)), ("he_normal", 2 / 300), ("lecun_normal", 1 / 300)],
)
def test_target_variance_of_the_dense_initialisers(init, variance):
  assert target_variance(init, 300, 100) == pytest.approx(variance)


def test_a_layer_takes_its_spec_as_a_dict_with_or_without_its_kind():
  from flax import nnx  # pylint: disable=g-import-not-at-top

  from tnjax import nn  # pylint: disable=g-import-not-at-top

  linear = nnx.Linear(64, 32, rngs=nnx.Rngs(0))
  fitted = nn.TTDense.from_linear(linear, {"ranks": 4})
  ranks = fitted.spec.ranks  # as stored: 4, or per bond where a bond holds less
  assert (
    isinstance(fitted.spec, nn.TTSpec) and max(ranks if isinstance(ranks, tuple) else (ranks,)) == 4
  )
  assert nn.TTDense(64, 32, {"kind": "tt", "ranks": 2}, rngs=nnx.Rngs(0)).spec.ranks == 2
  conv = nnx.Conv(3, 8, (3, 3), rngs=nnx.Rngs(0))
  assert nn.CPConv.from_conv(conv, {"rank": 3}).spec == nn.CPSpec(rank=3)
  with pytest.raises(ValueError, match="TTDense takes a TTSpec, got CPSpec"):
    nn.TTDense.from_linear(linear, {"kind": "cp", "rank": 2})
  with pytest.raises(ValueError, match=r"has no field\(s\) \['rank'\]"):
    nn.TTDense.from_linear(linear, {"rank": 2})
