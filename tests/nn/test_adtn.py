"""ADTN: generation vs a dense-matrix reference, gradients, counts, layers, fitting, sharing."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax.nn import (
  ADTNConv,
  ADTNDense,
  ADTNSpec,
  SharedADTN,
  nhwc_conv,
  format_table,
  layer_rows,
  make_conv,
  make_dense,
  spec_from_config,
  total_params,
)
from tnjax.nn.init import target_variance
from tnjax.tensor import adtn

from adtn_reference import adtn_dense_reference


def random_gates(seed, num_qubits, num_layers):
  """Generic gates: identity plus noise (NumPy draws: no per-shape compile of jax.random)."""
  shape = (num_layers, num_qubits - 1, 4, 4)
  gates = np.eye(4) + 0.7 * np.random.default_rng(seed).normal(size=shape)
  return jnp.asarray(gates.reshape(shape[:2] + adtn.GATE_SHAPE))


# --- tensor level ---------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", sorted(adtn.NONLINEARITIES))
def test_generation_equals_dense_matrix_reference(x64, nonlinearity):
  with jax.disable_jit():  # op by op: one compile per op shape, not one per (Q, M, nonlinearity)
    check_against_reference(nonlinearity)


def check_against_reference(nonlinearity):
  for num_qubits in range(3, 7):
    for num_layers in (1, 2, 3):
      gates = random_gates(10 * num_qubits + num_layers, num_qubits, num_layers)
      fast = adtn.adtn_generate(adtn.ADTN(gates, 1.7), nonlinearity)
      naive = adtn_dense_reference(gates, 1.7, num_qubits, nonlinearity)
      assert fast.shape == (2**num_qubits,)
      np.testing.assert_allclose(fast, naive, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("block_qubits", [2, 3, 4, 5, 6])
def test_every_fused_block_width_equals_the_reference(x64, block_qubits):
  # Widths above Q and odd Q exercise the ragged edge blocks of both parities.
  for num_qubits in (2, 3, 5, 8):
    for num_layers in (1, 3):
      gates = random_gates(num_qubits + 7 * num_layers, num_qubits, num_layers)
      fused = adtn.adtn_generate(adtn.ADTN(gates, 0.9), "tanh", block_qubits=block_qubits)
      naive = adtn_dense_reference(gates, 0.9, num_qubits, "tanh")
      np.testing.assert_allclose(fused, naive, rtol=1e-12, atol=1e-12 * np.abs(naive).max())


def test_fused_blocks_cover_every_index_and_never_cut_a_gate():
  for num_qubits in range(2, 12):
    for parity in (0, 1):
      for width in (2, 3, 4, 6):
        blocks = adtn.fused_blocks(num_qubits, parity, width)
        assert blocks[0][0] == 0 and blocks[-1][1] == num_qubits
        assert all(a < b <= a + width for a, b in blocks)
        assert all(stop == start for (_, stop), (start, _) in zip(blocks, blocks[1:]))
        # An inner edge e cuts the gate on bond e-1, which has this parity iff (e-1-parity) is even.
        assert all((stop - 1 - parity) % 2 for _, stop in blocks[:-1])
  with pytest.raises(ValueError, match="block_qubits must be >= 2"):
    adtn.fused_blocks(6, 0, 1)


def test_block_widths_agree_on_gradients(x64):
  gates = random_gates(5, 7, 3)

  def total(gates, width):
    vector = adtn.adtn_generate(adtn.ADTN(gates, 1.1), "relu", block_qubits=width)
    return jnp.sum(jnp.sin(vector))

  reference = jax.grad(total)(gates, 2)
  for width in (3, 4, 7):
    np.testing.assert_allclose(
      jax.grad(total)(gates, width), reference, rtol=1e-10, atol=1e-13 * np.abs(reference).max()
    )


def test_one_gate_on_the_product_state_is_its_first_input_column(x64):
  gates = random_gates(0, 2, 1)
  np.testing.assert_allclose(
    adtn.adtn_generate(adtn.ADTN(gates, 2.0)), 2.0 * gates[0, 0, :, :, 0, 0].ravel(), rtol=1e-15
  )


def test_weight_is_the_leading_slice_reshaped(x64):
  gates = random_gates(1, 5, 2)
  vector = adtn.adtn_generate(adtn.ADTN(gates, 0.5))
  np.testing.assert_array_equal(
    adtn.adtn_to_dense(adtn.ADTN(gates, 0.5), (3, 7)), vector[:21].reshape(3, 7)
  )
  np.testing.assert_array_equal(
    adtn.adtn_to_dense(adtn.ADTN(gates, 0.5), (2, 5), offset=21), vector[21:31].reshape(2, 5)
  )


@pytest.mark.parametrize("nonlinearity", ["identity", "tanh", "relu"])
def test_gradients_match_central_finite_differences(x64, nonlinearity):
  num_qubits, num_layers = 4, 2
  gates = random_gates(3, num_qubits, num_layers)
  weights = jnp.asarray(np.random.default_rng(0).normal(size=2**num_qubits))

  def loss(gates, scale):
    return jnp.sum(weights * adtn.adtn_generate(adtn.ADTN(gates, scale), nonlinearity) ** 2)

  grad_gates, grad_scale = jax.grad(loss, argnums=(0, 1))(gates, 1.3)
  flat = np.asarray(gates).ravel()
  step = 1e-6
  numeric = np.empty_like(flat)
  for i in range(flat.size):
    up, down = flat.copy(), flat.copy()
    up[i] += step
    down[i] -= step
    difference = loss(up.reshape(gates.shape), 1.3) - loss(down.reshape(gates.shape), 1.3)
    numeric[i] = difference / (2 * step)
  np.testing.assert_allclose(np.asarray(grad_gates).ravel(), numeric, rtol=1e-6, atol=1e-8)
  numeric_scale = (loss(gates, 1.3 + step) - loss(gates, 1.3 - step)) / (2 * step)
  np.testing.assert_allclose(grad_scale, numeric_scale, rtol=1e-7)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_the_fused_backward_equals_the_gradient_of_the_kronecker_reference(x64, nonlinearity):
  # Odd and even Q, blocks of 2..4 indices, one and three layers, scanned and remat'd.
  weights = jnp.asarray(np.random.default_rng(1).normal(size=2**7))
  cases = [
    (5, 1, 2, {}),
    (6, 3, 4, {}),
    (7, 2, 3, {"scan_layers": True}),
    (7, 3, 4, {"remat": True}),
  ]
  for num_qubits, num_layers, block_qubits, options in cases:
    gates = random_gates(num_qubits + num_layers, num_qubits, num_layers)
    w = weights[: 2**num_qubits]

    def fused(gates, scale):
      vector = adtn.adtn_generate(
        adtn.ADTN(gates, scale),
        nonlinearity,
        block_qubits=block_qubits,
        fused_backward=True,
        **options,
      )
      return jnp.sum(w * jnp.sin(vector))

    def reference(gates, scale):
      return jnp.sum(w * jnp.sin(adtn_dense_reference(gates, scale, num_qubits, nonlinearity)))

    got = jax.grad(fused, argnums=(0, 1))(gates, 1.3)
    want = jax.grad(reference, argnums=(0, 1))(gates, 1.3)
    for g, r in zip(got, want):
      np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-12)
    unfused = dict(options, block_qubits=block_qubits, fused_backward=False)
    autodiff = jax.grad(
      lambda g: jnp.sum(w * jnp.sin(adtn.adtn_generate(adtn.ADTN(g, 1.3), nonlinearity, **unfused)))
    )(gates)
    np.testing.assert_allclose(got[0], autodiff, rtol=1e-11, atol=1e-12)


def test_remat_changes_neither_values_nor_gradients(x64):
  gates = random_gates(4, 6, 3)

  def total(gates, remat):
    return jnp.sum(jnp.sin(adtn.adtn_generate(adtn.ADTN(gates, 1.0), "tanh", remat=remat)))

  np.testing.assert_allclose(total(gates, True), total(gates, False), rtol=1e-14)
  np.testing.assert_allclose(
    jax.grad(total)(gates, True), jax.grad(total)(gates, False), rtol=1e-12, atol=1e-14
  )


@pytest.mark.parametrize("remat", [False, True])
def test_scanned_layers_match_the_reference_and_the_loop(x64, remat):
  # One layer (nothing to scan) and three layers, against the dense Kronecker reference.
  for num_layers in (1, 3):
    gates = random_gates(5 + num_layers, 6, num_layers)
    scanned = adtn.adtn_generate(adtn.ADTN(gates, 1.2), "tanh", scan_layers=True, remat=remat)
    naive = adtn_dense_reference(gates, 1.2, 6, "tanh")
    np.testing.assert_allclose(scanned, naive, rtol=1e-12, atol=1e-13)

  def total(gates, scan_layers):
    vector = adtn.adtn_generate(adtn.ADTN(gates, 1.0), "relu", scan_layers=scan_layers, remat=remat)
    return jnp.sum(jnp.sin(vector))

  np.testing.assert_allclose(
    jax.grad(total)(gates, True), jax.grad(total)(gates, False), rtol=1e-12, atol=1e-14
  )


def test_init_gates_are_orthogonal_and_tend_to_identity(x64):
  gates = adtn.adtn_init_gates(jax.random.PRNGKey(0), 5, 3, 1.0, jnp.float64).reshape(3, 4, 4, 4)
  np.testing.assert_allclose(
    jnp.einsum("mqji,mqjk->mqik", gates, gates), np.broadcast_to(np.eye(4), gates.shape), atol=1e-12
  )
  # Orthogonal gates keep the norm: with no nonlinearity the vector has norm 1.
  full = adtn.adtn_init_gates(jax.random.PRNGKey(0), 8, 4, 1.0, jnp.float64)
  np.testing.assert_allclose(
    jnp.linalg.norm(adtn.adtn_generate(adtn.ADTN(full, 1.0), "identity")), 1.0, rtol=1e-12
  )
  still = adtn.adtn_init_gates(jax.random.PRNGKey(0), 5, 3, 0.0, jnp.float64)
  np.testing.assert_allclose(adtn.adtn_generate(adtn.ADTN(still, 1.0)), np.eye(32)[0], atol=1e-15)


def test_parameter_counts_are_exact():
  assert adtn.adtn_num_params(2, 1) == 17
  assert adtn.adtn_num_params(27, 2) == 833  # VGG-16 FC6 25088x4096
  assert adtn.adtn_num_params(24, 2) == 737  # VGG-16 FC7 4096x4096
  assert adtn.adtn_num_qubits(25088 * 4096) == 27 and adtn.adtn_num_qubits(4096 * 4096) == 24
  assert adtn.adtn_num_qubits(1) == 2 and adtn.adtn_num_qubits(5) == 3
  for num_qubits, num_layers in [(3, 1), (7, 3), (20, 4)]:
    gate_entries = math.prod(adtn.adtn_gate_shape(num_qubits, num_layers))
    assert adtn.adtn_num_params(num_qubits, num_layers) == gate_entries + 1


def test_fit_recovers_a_generated_target(x64):
  target = adtn.adtn_to_dense(adtn.ADTN(random_gates(5, 7, 2), 0.3), (10, 12))
  start = adtn.adtn_init_gates(jax.random.PRNGKey(6), 7, 2, 1.0, jnp.float64)
  fitted_adtn, errors = adtn.adtn_fit(target, start, steps=200, learning_rate=3e-2)
  assert errors.shape == (201,) and errors[0] > 0.9
  fitted = adtn.adtn_to_dense(fitted_adtn, (10, 12))
  achieved = np.linalg.norm(fitted - target) / np.linalg.norm(target)
  np.testing.assert_allclose(achieved, errors.min(), rtol=1e-8)
  assert achieved < 0.5 * errors[0]


# --- layers -----------------------------------------------------------------------


def build_dense(n_in, n_out, spec=ADTNSpec(), seed=0, **kwargs):
  layer = ADTNDense(n_in, n_out, spec, rngs=nnx.Rngs(seed), param_dtype=jnp.float64, **kwargs)
  if layer.bias is not None:
    layer.bias[...] = jnp.linspace(-1, 1, n_out)
  return layer


@pytest.mark.parametrize(
  "spec", [ADTNSpec(), ADTNSpec(layers=3, nonlinearity="tanh"), ADTNSpec(layers=1, use_bias=False)]
)
def test_dense_forward_equals_x_times_dense_weight_plus_bias(x64, spec):
  layer = build_dense(30, 20, spec)
  W = layer.to_dense()
  assert W.shape == (30, 20) and layer.num_qubits == 10
  bias = layer.bias[...] if spec.use_bias else 0.0
  for batch_shape in [(3,), (2, 4)]:
    x = jnp.asarray(np.random.default_rng(0).normal(size=batch_shape + (30,)))
    np.testing.assert_allclose(layer(x), x @ W + bias, rtol=1e-12, atol=1e-13)
  np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(layer, x), x @ W + bias, rtol=1e-12)


def test_scan_layers_spec_gives_the_same_layer_outputs(x64):
  looped = build_dense(30, 20, ADTNSpec(layers=4))
  scanned = build_dense(30, 20, ADTNSpec(layers=4, scan_layers=True))
  x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 30)))
  np.testing.assert_allclose(scanned(x), looped(x), rtol=1e-12, atol=1e-13)


def test_conv_forward_equals_conv_with_dense_kernel(x64):
  layer = ADTNConv(4, 16, 3, ADTNSpec(), strides=2, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
  layer.bias[...] = jnp.arange(16.0)
  kernel = layer.to_dense()
  assert kernel.shape == (3, 3, 4, 16) and layer.num_qubits == 10  # 576 -> 2^10
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 7, 7, 4)))
  np.testing.assert_allclose(
    layer(x), nhwc_conv(x, kernel, (2, 2)) + jnp.arange(16.0), rtol=1e-12, atol=1e-12
  )


@pytest.mark.parametrize("init", ["glorot_normal", "he_normal", "lecun_normal"])
def test_init_std_of_generated_weight_equals_target(x64, init):
  spec = ADTNSpec(init=init)
  dense = build_dense(30, 20, spec)
  np.testing.assert_allclose(
    np.std(dense.to_dense()), target_variance(init, 30, 20) ** 0.5, rtol=1e-10
  )
  conv = ADTNConv(4, 16, 3, spec, rngs=nnx.Rngs(1), param_dtype=jnp.float64)
  np.testing.assert_allclose(
    np.std(conv.to_dense()), target_variance(init, 36, 144) ** 0.5, rtol=1e-10
  )


def test_layer_counts_and_vgg16_fc_sizes():
  layer = ADTNDense(30, 20, ADTNSpec(layers=3), rngs=nnx.Rngs(0))
  gates_and_scale = total_params(layer) - 20
  assert layer.weight_params == gates_and_scale == 16 * 3 * 9 + 1
  assert layer.num_params == layer.weight_params + 20
  fc6 = nnx.eval_shape(lambda: ADTNDense(25088, 4096, ADTNSpec(), rngs=nnx.Rngs(0)))
  fc7 = nnx.eval_shape(lambda: ADTNDense(4096, 4096, ADTNSpec(), rngs=nnx.Rngs(0)))
  assert (fc6.num_qubits, fc6.weight_params, fc7.num_qubits, fc7.weight_params) == (
    27,
    833,
    24,
    737,
  )


def test_from_dense_fits_an_adtn_generated_weight(x64):
  spec = ADTNSpec(layers=2)
  W = build_dense(12, 10, spec, seed=7).to_dense()
  layer = ADTNDense.from_dense(
    W, jnp.ones(10), spec, steps=200, learning_rate=3e-2, param_dtype=jnp.float64
  )
  assert len(layer.fit_history) == 201 and layer.fit_history[0] > 0.5
  assert layer.fit_error < 0.5 * layer.fit_history[0]
  achieved = np.linalg.norm(layer.to_dense() - W) / np.linalg.norm(W)
  np.testing.assert_allclose(achieved, layer.fit_error, rtol=1e-8)
  np.testing.assert_array_equal(layer.bias[...], np.ones(10))


def test_conv_from_dense_reduces_the_error(x64):
  kernel = ADTNConv(2, 4, 3, ADTNSpec(), rngs=nnx.Rngs(3), param_dtype=jnp.float64).to_dense()
  layer = ADTNConv.from_dense(
    kernel, None, ADTNSpec(use_bias=False), steps=150, learning_rate=3e-2, param_dtype=jnp.float64
  )
  assert layer.kernel_size == (3, 3) and layer.fit_error < 0.5 * layer.fit_history[0]


class TwoSharedLayers(nnx.Module):
  def __init__(self, spec=ADTNSpec()):
    self.generator = SharedADTN([30 * 20, 20 * 10], spec, rngs=nnx.Rngs(1), param_dtype=jnp.float64)
    self.first = ADTNDense(
      30,
      20,
      spec,
      generator=self.generator,
      offset=self.generator.offsets[0],
      rngs=nnx.Rngs(2),
      param_dtype=jnp.float64,
    )
    self.second = ADTNDense(
      20,
      10,
      spec,
      generator=self.generator,
      offset=self.generator.offsets[1],
      rngs=nnx.Rngs(3),
      param_dtype=jnp.float64,
    )

  def __call__(self, x):
    return self.second(jax.nn.relu(self.first(x)))


def test_shared_generator_slices_disjoint_parts_and_counts_gates_once(x64):
  model = TwoSharedLayers()
  assert model.generator.offsets == (0, 600) and model.generator.num_qubits == 10
  vector = adtn.adtn_generate(adtn.ADTN(model.generator.gates[...], 1.0))
  np.testing.assert_allclose(
    model.first.to_dense(), model.first.scale[...] * vector[:600].reshape(30, 20), rtol=1e-14
  )
  np.testing.assert_allclose(
    model.second.to_dense(), model.second.scale[...] * vector[600:800].reshape(20, 10), rtol=1e-14
  )
  for layer, fan_in, fan_out in [(model.first, 30, 20), (model.second, 20, 10)]:
    np.testing.assert_allclose(
      np.std(layer.to_dense()), target_variance("glorot_normal", fan_in, fan_out) ** 0.5, rtol=1e-10
    )
  gates = 16 * 2 * 9
  assert model.generator.weight_params == gates
  assert model.first.weight_params == model.second.weight_params == 1
  assert total_params(model) == gates + 2 + 20 + 10
  rows = {row["name"]: row for row in layer_rows(model)}
  assert sum(row["params"] for row in rows.values()) == total_params(model)
  assert sum(row["dense_params"] for row in rows.values()) == 600 + 200 + 30
  assert "generator Q=10 M=2 for 2 weights" in format_table(model)
  # Both layers' losses reach the one set of gates.
  x = jnp.ones((4, 30))
  grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model)
  gate_grads = [g for g in jax.tree.leaves(grads) if g.shape == model.generator.gates.shape]
  assert len(gate_grads) == 1 and np.abs(gate_grads[0]).max() > 0


def test_factory_and_config_build_adtn_layers():
  spec = spec_from_config({"kind": "adtn", "layers": 3, "nonlinearity": "tanh"})
  assert spec == ADTNSpec(layers=3, nonlinearity="tanh")
  assert spec_from_config(spec.to_config()) == spec
  dense = make_dense(spec, 10, 6, rngs=nnx.Rngs(0))
  conv = make_conv(spec, 3, 4, 3, rngs=nnx.Rngs(0))
  assert isinstance(dense, ADTNDense) and dense.num_layers == 3
  assert isinstance(conv, ADTNConv) and conv.weight_params == 16 * 3 * 6 + 1  # 108 -> Q = 7


# --- errors -----------------------------------------------------------------------


def test_errors_name_the_bad_field():
  with pytest.raises(ValueError, match="layers must be >= 1"):
    ADTNSpec(layers=0)
  with pytest.raises(ValueError, match="nonlinearity='softplus' is unknown"):
    ADTNSpec(nonlinearity="softplus")
  with pytest.raises(ValueError, match="init_noise"):
    ADTNSpec(init_noise=-1.0)
  with pytest.raises(ValueError, match="layers M >= 1"):
    adtn.adtn_num_params(5, 0)
  with pytest.raises(ValueError, match="Q >= 2"):
    adtn.adtn_num_params(1, 2)
  gates = adtn.adtn_init_gates(jax.random.PRNGKey(0), 4, 1)
  with pytest.raises(ValueError, match="nonlinearity='cube' is unknown"):
    adtn.adtn_generate(adtn.ADTN(gates, 1.0), "cube")
  with pytest.raises(ValueError, match="Q must be at least 5"):
    adtn.adtn_to_dense(adtn.ADTN(gates, 1.0), (4, 5))
  with pytest.raises(ValueError, match=r"\(M, 3, 2, 2, 2, 2\)"):
    adtn.adtn_generate(adtn.ADTN(gates[..., 0], 1.0))  # a gate index short
  generator = SharedADTN(100, ADTNSpec(), rngs=nnx.Rngs(0))  # Q = 7: 128 numbers
  with pytest.raises(ValueError, match="offset=100 does not fit"):
    ADTNDense(10, 10, generator=generator, offset=100, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="offset=None"):
    ADTNDense(10, 10, generator=generator, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="needs a shared generator"):
    ADTNDense(10, 10, offset=3, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="sizes must be positive"):
    SharedADTN([10, 0], rngs=nnx.Rngs(0))


@pytest.mark.parametrize("param_dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_parameters_initialise_and_fit(param_dtype):
  linear = nnx.Linear(12, 20, param_dtype=param_dtype, rngs=nnx.Rngs(0))
  layer = ADTNDense.from_linear(linear, ADTNSpec(layers=2))
  y = layer(jnp.ones((2, 12), param_dtype))
  assert y.dtype == param_dtype and bool(jnp.all(jnp.isfinite(y)))
  assert all(p.dtype == param_dtype for p in jax.tree.leaves(nnx.state(layer, nnx.Param)))
