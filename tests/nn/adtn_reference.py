"""The ADTN generator built naively, for tests: each half-layer of the brick wall as an
explicit 2^Q x 2^Q matrix, the Kronecker product of its 4x4 gate matrices (2x2 identities
at the edges). Exponential memory: small Q only. Written in jax.numpy, so gradients of the
fused generator can be checked against its autodiff."""

import jax.numpy as jnp

from tnjax.tensor import adtn


def _kron_all(matrices):
  out = jnp.ones((1, 1), matrices[0].dtype)
  for matrix in matrices:
    out = jnp.kron(out, matrix)
  return out


def adtn_dense_reference(gates, scale, num_qubits: int, nonlinearity: str = "relu"):
  gates = jnp.asarray(gates)
  assert gates.shape[1:] == (num_qubits - 1, 2, 2, 2, 2), gates.shape
  activation = adtn.get_nonlinearity(nonlinearity)
  eye = jnp.eye(2, dtype=gates.dtype)
  state = jnp.zeros(2**num_qubits, gates.dtype).at[0].set(1.0)
  for m in range(gates.shape[0]):
    for parity in (0, 1):
      blocks, bond = [eye] * parity, parity
      while bond + 1 < num_qubits:
        blocks.append(gates[m, bond].reshape(4, 4))
        bond += 2
      blocks += [eye] * (num_qubits - bond)
      state = _kron_all(blocks) @ state
    if m < gates.shape[0] - 1:
      state = activation(state)
  return scale * state
