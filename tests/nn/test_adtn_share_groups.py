"""ADTN layers that name one `share` group read their weights from one generator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax import models
from tnjax.nn import SharedADTN, total_params
from tnjax.tensor import adtn


def _lenet(layers):
  return models.build_model({"name": "lenet5", "layers": layers}, (28, 28, 1), 10, rngs=nnx.Rngs(0))


def test_two_layers_of_a_group_share_one_generator_counted_once():
  shared = {"kind": "adtn", "layers": 2, "share": "fc"}
  model = _lenet({"fc1": shared, "fc2": shared})
  assert isinstance(model.fc1.generator, SharedADTN) and model.fc1.generator is model.fc2.generator
  generator = model.fc1.generator
  assert generator.sizes == (400 * 120, 120 * 84) and generator.offsets == (0, 48000)
  q = adtn.adtn_num_qubits(48000 + 10080)  # 2^16 >= 58,080
  dense_rest = (5 * 5 * 1 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (84 * 10 + 10)
  # Gates once (16 M (Q-1)), one scale per layer, and the two layers' biases.
  assert total_params(model) == 16 * 2 * (q - 1) + 2 + 120 + 84 + dense_rest
  # Each layer's weight is its own slice of the one generated vector.
  full = adtn.adtn_generate(adtn.ADTN(generator.gates[...], model.fc2.scale[...]), "relu")
  np.testing.assert_allclose(
    model.fc2.to_dense(), full[48000:58080].reshape(120, 84), rtol=1e-5, atol=1e-7
  )


def test_a_shared_generator_trains_from_both_layers():
  shared = {"kind": "adtn", "layers": 2, "share": "fc"}
  model = _lenet({"fc1": shared, "fc2": shared})
  x = jax.random.normal(jax.random.key(0), (2, 28, 28, 1))
  grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model)
  gate_grad = grads["fc1"]["generator"]["gates"][...]
  assert gate_grad.shape == model.fc1.generator.gates.shape and float(jnp.abs(gate_grad).max()) > 0


def test_layers_of_one_group_must_agree_on_the_generator():
  with pytest.raises(ValueError, match="disagree on \\['layers'\\]"):
    _lenet(
      {
        "fc1": {"kind": "adtn", "layers": 2, "share": "g"},
        "fc2": {"kind": "adtn", "layers": 4, "share": "g"},
      }
    )
