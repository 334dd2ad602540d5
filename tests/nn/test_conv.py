"""Convolutions: CP kernels (CPAC-Conv) and the dense Conv, against lax.conv in float64."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import Conv, CPConv, CPSpec, DenseSpec, nhwc_conv, make_conv
from tnjax.nn.init import target_variance
from tnjax.tensor import cp


def set_bias(layer):
  layer.bias[...] = jnp.linspace(-1, 1, layer.out_channels)
  return layer


@pytest.mark.parametrize("kernel_size", [(3, 3), (3, 1), (5, 3)])
@pytest.mark.parametrize(
  "strides, padding, dilation",
  [
    (1, "SAME", 1),
    (2, "SAME", 1),
    (1, "VALID", 2),
    ((2, 1), ((2, 1), (0, 3)), (1, 2)),
    (1, 1, 1),
  ],
)
@pytest.mark.parametrize("cls, spec", [(CPConv, CPSpec(rank=3)), (Conv, DenseSpec())])
def test_conv_equals_lax_conv_with_the_dense_kernel(
  x64, cls, spec, kernel_size, strides, padding, dilation
):
  layer = set_bias(
    cls(
      4,
      6,
      kernel_size,
      spec,
      strides=strides,
      padding=padding,
      kernel_dilation=dilation,
      rngs=nnx.Rngs(0),
      param_dtype=jnp.float64,
    )
  )
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 11, 12, 4)))  # two batch dims
  strides2 = strides if isinstance(strides, tuple) else (strides, strides)
  dilation2 = dilation if isinstance(dilation, tuple) else (dilation, dilation)
  expected = nhwc_conv(x.reshape(6, 11, 12, 4), layer.to_dense(), strides2, padding, dilation2)
  expected = expected + layer.bias[...]
  np.testing.assert_allclose(layer(x), expected.reshape((2, 3) + expected.shape[1:]), atol=1e-12)


def test_from_dense_reproduces_a_cp_kernel_and_records_the_fit(x64):
  source = set_bias(CPConv(4, 6, 3, CPSpec(rank=2), rngs=nnx.Rngs(3), param_dtype=jnp.float64))
  copy = CPConv.from_dense(
    source.to_dense(), source.bias[...], CPSpec(rank=2), param_dtype=jnp.float64
  )
  assert copy.fit_error < 1e-6
  np.testing.assert_allclose(copy.to_dense(), source.to_dense(), atol=1e-6)


def test_feature_maps_weighted_by_the_out_factor_give_the_output(x64):
  layer = set_bias(
    CPConv(3, 5, (3, 2), CPSpec(rank=4), strides=2, rngs=nnx.Rngs(1), param_dtype=jnp.float64)
  )
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 1, 9, 8, 3)))
  maps = layer.feature_maps(x)
  assert maps.shape == (2, 1, 5, 4, 4)
  np.testing.assert_allclose(maps @ layer.factors[0][...].T + layer.bias[...], layer(x), atol=1e-12)


def abstract_conv(config, *args):
  """The layer with abstract parameters: exact sizes without drawing random numbers."""
  return nnx.eval_shape(lambda: make_conv(config, *args, rngs=nnx.Rngs(0)))


def test_parameter_counts_are_exact():
  layer = abstract_conv({"kind": "cp", "rank": 5}, 8, 16, (3, 3))
  assert layer.weight_params == 5 * (16 + 3 + 3 + 8)
  assert layer.num_params == 5 * 30 + 16
  assert layer.compression == pytest.approx(3 * 3 * 8 * 16 / 150)
  assert abstract_conv({"kind": "dense", "use_bias": False}, 8, 16, 3).num_params == 1152


def test_cp_kernel_has_the_dense_init_variance():
  # Kernel entries share factors: one draw's variance is ~30% noisy, a 16-seed mean ~8%.
  variances = [
    float(jnp.var(CPConv(64, 64, 3, CPSpec(rank=16), rngs=nnx.Rngs(s)).to_dense()))
    for s in range(16)
  ]
  assert np.mean(variances) == pytest.approx(target_variance("glorot_normal", 576, 576), rel=0.25)


def test_significance_ranks_the_scaled_component_first(x64):
  layer = CPConv(3, 4, 3, CPSpec(rank=4), rngs=nnx.Rngs(0), param_dtype=jnp.float64)
  layer.factors[0][...] = layer.factors[0][...].at[:, 2].multiply(100.0)
  assert int(cp.rank_components(layer.weights())[0]) == 2
  norms = [np.linalg.norm(np.asarray(f[...])[:, 1]) for f in layer.factors]
  assert float(layer.significance()[1]) == pytest.approx(np.prod(norms))


@pytest.mark.parametrize(
  "make, message",
  [
    (lambda: CPSpec(rank=0), "rank must be >= 1"),
    (lambda: CPConv(0, 4, 3, CPSpec(), rngs=nnx.Rngs(0)), "in_channels must be >= 1"),
    (lambda: CPConv(4, 4, (3, 0), CPSpec(), rngs=nnx.Rngs(0)), "kernel_size must be"),
    (
      lambda: CPConv(4, 4, 3, CPSpec(), padding="HALF", rngs=nnx.Rngs(0)),
      "padding='HALF' is unknown",
    ),
    (lambda: CPConv(4, 4, 3, CPSpec(), rngs=nnx.Rngs(0))(jnp.ones((1, 8, 8, 3))), "expects"),
    (
      lambda: make_conv({"kind": "lowrank"}, 4, 4, 3, rngs=nnx.Rngs(0)),
      "has no convolutional form",
    ),
    (lambda: CPConv.from_dense(np.ones((3, 3, 4)), None, CPSpec()), "HWIO"),
  ],
)
def test_bad_conv_inputs_raise_clear_errors(make, message):
  with pytest.raises(ValueError, match=message):
    make()


def test_an_unbatched_hwc_input_works_as_in_nnx_conv():
  import warnings  # pylint: disable=g-import-not-at-top

  from tnjax.nn import registry  # pylint: disable=g-import-not-at-top

  conv = nnx.Conv(4, 6, (3, 3), rngs=nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 8, 4)), jnp.float32)
  assert conv(x).shape == (8, 8, 6)
  for kind in registry.kinds("conv"):
    cls = registry.layer_class("conv", kind)
    spec = cls.spec_type(in_rank=2, out_rank=3) if kind == "tucker" else cls.spec_type()
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      layer = cls.from_conv(conv, spec)
    np.testing.assert_array_equal(layer(x), layer(x[None])[0], err_msg=kind)
