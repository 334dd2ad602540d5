"""A format is local: one spec class and one layer class, defined here in a test module,
register themselves; configs, make_dense, compression (sizing by ratio and error, size
limits) and the layer table then know the format without any other file changing."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import tnjax
from tnjax import errors
from tnjax.nn import FactorizedDense, LayerSpec, format_table, make_dense, registry


@pytest.fixture
def fresh_registry(monkeypatch):
  """The table as it is, restored after the test (the new format must not leak)."""
  monkeypatch.setattr(registry, "_LAYERS", dict(registry._LAYERS))  # pylint: disable=protected-access


def _define_format():
  @dataclasses.dataclass(frozen=True)
  class SVDSpec(LayerSpec):
    """W = U diag(s) V, kept as its three factors."""

    rank: int = 2
    int_fields = ("rank",)
    kind = "svd_test"
    size_fields = ("rank",)

    def largest_useful_size(self, layer) -> int:
      return min(layer.weight_shape)

  class SVDDense(FactorizedDense):
    spec_type = SVDSpec

    def _init_params(self, rngs):
      r = self.spec.rank
      self.u = nnx.Param(jnp.ones((self.in_features, r), self.param_dtype) / self.in_features)
      self.s = nnx.Param(jnp.ones((r,), self.param_dtype))
      self.v = nnx.Param(jnp.ones((r, self.out_features), self.param_dtype))

    @property
    def weight_params(self):
      r = self.spec.rank
      return r * (self.in_features + self.out_features + 1)

    def weights(self):
      return (self.u[...], self.s[...], self.v[...])

    def to_dense(self):
      return (self.u[...] * self.s[...]) @ self.v[...]

    def _matmul(self, x):
      return ((x @ self.u[...]) * self.s[...]) @ self.v[...]

    def _fit(self, weight):
      u, s, vt = np.linalg.svd(np.asarray(weight), full_matrices=False)
      r = self.spec.rank
      self.u[...], self.s[...], self.v[...] = u[:, :r], s[:r], vt[:r]

  return SVDDense


class TwoLayers(nnx.Module):
  def __init__(self, rngs):
    self.fc1 = nnx.Linear(32, 24, rngs=rngs)
    self.fc2 = nnx.Linear(24, 10, rngs=rngs)

  def __call__(self, x):
    return self.fc2(jnp.tanh(self.fc1(x)))


def test_a_format_defined_in_a_test_module_is_known_everywhere(fresh_registry):
  layer_class = _define_format()
  assert (
    "svd_test" in registry.kinds("dense")
    and registry.layer_class("dense", "svd_test") is layer_class
  )
  layer = make_dense({"kind": "svd_test", "rank": 3}, 32, 24, rngs=nnx.Rngs(0))
  assert isinstance(layer, layer_class) and layer.weight_params == 3 * 57
  model = TwoLayers(nnx.Rngs(0))
  small, rows = tnjax.compress(model, {"fc1": {"kind": "svd_test", "ratio": 4}})
  assert rows[0]["spec"]["rank"] == 3  # the largest rank within 32 * 24 / 4 = 192 weights
  _, by_error = tnjax.compress(model, {"fc1": {"kind": "svd_test", "error": 0.5}})
  assert by_error[0]["relative_error"] <= 0.5
  with pytest.raises(errors.UserError, match=r"svd_test rank=30 is above what is useful .*24"):
    tnjax.compress(model, {"fc1": {"kind": "svd_test", "rank": 30}})
  assert "svd_test" in format_table(small, jnp.zeros((2, 32)))
