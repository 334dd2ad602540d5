"""Deep tensor networks that generate weights (ADTN; Qing, Li, Zhou & Ran 2025).

A weight of n numbers is padded to 2^Q and read as a Q-index tensor whose
indices all have dimension 2. The tensor is the output of a small deep network
acting on the product state |0...0> (Q vectors [1, 0]):

  state = |0...0>
  for m in 0..M-1:
    state = brick-wall layer m (Q-1 gates of shape (2, 2, 2, 2)) applied to state
    if m < M-1: state = nonlinearity(state)
  vector = scale * state

Conventions:
  * `gates` has shape (M, Q-1, 2, 2, 2, 2); gates[m, q] acts on the
    neighbouring indices (q, q+1) as new[a, b] = sum_{c,d} gate[a, b, c, d] old[c, d].
  * Within a layer the gates on even bonds (q = 0, 2, 4, ...) act first, then
    those on odd bonds (q = 1, 3, ...): one brick of a brick wall. The even
    gates touch disjoint indices, so their order among themselves is irrelevant.
  * Index 0 is the most significant bit of the flat position (row-major), so a
    weight of shape (in, out) is `vector[:in * out].reshape(in, out)`.

Cost: the gates of one parity inside a run of b indices are fused into one
2^b x 2^b block (see "Fused blocks" below), so a layer is about 2Q/b passes
over the 2^Q state, each one 2-D GEMM; no 2^Q x 2^Q matrix is ever formed. The
arithmetic is about 2 * 2^Q * 2^b multiply-adds per pass (4 * 2^Q per gate
unfused); on a CPU the passes are memory-bound and b = 4 balances the two
(`execution.adtn_block_qubits`). benchmarks/results/adtn_generator_cpu.md times it against
gate-by-gate passes and against its FLOP and memory bounds.

Parameter count (`adtn_num_params`): 16 M (Q-1) gate entries plus 1 output
scale, i.e. 16 M (Q-1) + 1. A generator shared by k layers stores the gates
once and one scale per layer: 16 M (Q-1) + k.

Counts for VGG-16's two large linear layers, one ADTN each, default M = 2:
  ImageNet FC6 25088x4096: Q = 27, 16*2*26 + 1 = 833
  ImageNet FC7  4096x4096: Q = 24, 16*2*23 + 1 = 737   (together 1570)
  CIFAR VGG-16 with 512x512 linear layers: Q = 18, 16*2*17 + 1 = 545 each
  (1090 together). The paper reports 424 for its two CIFAR-10 ADTNs; its Q, M
  and counting are in a supplement not available here, so we do not claim to
  match it. With M = 1 the CIFAR 512x512 pair is 2 * (16*17 + 1) = 546.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax import lax

from tnjax.tensor import execution
from tnjax.tensor import shapes as shapes_lib

NONLINEARITIES: dict[str, Callable] = {
  "relu": jax.nn.relu,
  "identity": lambda x: x,
  "tanh": jnp.tanh,
  "leaky_relu": jax.nn.leaky_relu,
  "gelu": jax.nn.gelu,
  "silu": jax.nn.silu,
}

GATE_SHAPE = (2, 2, 2, 2)


class ADTN(NamedTuple):
  """A weight generator: gates (M, Q-1, 2, 2, 2, 2) and a scalar output scale."""

  gates: Any
  scale: Any

  @property
  def num_qubits(self) -> int:
    return self.gates.shape[1] + 1

  @property
  def num_layers(self) -> int:
    return self.gates.shape[0]

  def astype(self, dtype) -> "ADTN":
    return ADTN(self.gates.astype(dtype), jnp.asarray(self.scale).astype(dtype))


def get_nonlinearity(name: str) -> Callable:
  if name not in NONLINEARITIES:
    raise ValueError(f"nonlinearity={name!r} is unknown; choose one of {sorted(NONLINEARITIES)}.")
  return NONLINEARITIES[name]


def adtn_num_qubits(size: int) -> int:
  """Smallest Q >= 2 with 2^Q >= size (Q = 1 would hold no gate)."""
  if int(size) < 1:
    raise ValueError(f"An ADTN must generate at least one number, got size={size}.")
  return max(2, math.ceil(math.log2(int(size))))


def adtn_num_params(num_qubits: int, num_layers: int) -> int:
  """16 M (Q-1) gate entries + 1 output scale."""
  check_sizes(num_qubits, num_layers)
  return 16 * num_layers * (num_qubits - 1) + 1


def adtn_gate_shape(num_qubits: int, num_layers: int) -> tuple[int, ...]:
  """Shape (M, Q-1, 2, 2, 2, 2) of the gates array."""
  check_sizes(num_qubits, num_layers)
  return (num_layers, num_qubits - 1) + GATE_SHAPE


def check_sizes(num_qubits: int, num_layers: int):
  if int(num_layers) < 1:
    raise ValueError(f"An ADTN needs layers M >= 1, got {num_layers}.")
  if int(num_qubits) < 2:
    raise ValueError(
      f"An ADTN needs Q >= 2 indices (one two-site gate at least), got Q={num_qubits}."
    )


def _check_gates(gates, num_qubits: int):
  check_sizes(num_qubits, gates.shape[0] if gates.ndim == 6 else 1)
  if gates.ndim != 6 or gates.shape[1:] != (num_qubits - 1,) + GATE_SHAPE:
    raise ValueError(
      f"gates must have shape (M, Q-1, 2, 2, 2, 2) = "
      f"(M, {num_qubits - 1}, 2, 2, 2, 2), "
      f"got {gates.shape}."
    )


def bond_order(num_qubits: int) -> list[int]:
  """Bonds in the order their gates act within one layer: even, then odd."""
  return list(range(0, num_qubits - 1, 2)) + list(range(1, num_qubits - 1, 2))


def apply_gate(state, gate, bond: int, *, precision=None):
  """Applies a (2, 2, 2, 2) gate to indices (bond, bond+1) of a flat 2^Q state (one gate, one pass)."""
  num_qubits = int(state.shape[-1]).bit_length() - 1
  left, right = 2**bond, 2 ** (num_qubits - bond - 2)
  # The flat state viewed as (left, 4, right): the gate is a 4x4 matrix on the middle axis.
  mixed = jnp.einsum(
    "ij,ljr->lir", gate.reshape(4, 4), state.reshape(left, 4, right), precision=precision
  )
  return mixed.reshape(state.shape)


def product_state(num_qubits: int, dtype=jnp.float32):
  """|0...0>: the flat 2^Q vector with a single 1 at position 0."""
  return jnp.zeros((2**num_qubits,), dtype).at[0].set(1)


# --- Fused blocks ---------------------------------------------------------------
# Applying the Q-1 gates of a layer one by one costs Q-1 passes over the 2^Q
# state, each a tiny 4x4 product that runs at memory speed. As state-vector
# simulators do (qsim's gate fusion), neighbouring gates are fused into blocks:
# the gates of one parity (even or odd bonds) inside a run of b qubits form one
# 2^b x 2^b matrix, the Kronecker product of their 4x4 matrices. A sublayer is
# then about Q/b passes. Each pass is one 2-D GEMM on the lowest b index bits
# that also rotates them to the top (B @ S^T with S the state as (2^(Q-b), 2^b)),
# so the next block is again the lowest bits and no transpose is ever needed;
# after the blocks of a sublayer have covered all Q bits the order is back.
# `execution.adtn_block_qubits` picks b from the FLOP/byte balance of the device.


def fused_blocks(num_qubits: int, parity: int, block_qubits: int) -> list[tuple[int, int]]:
  """Qubit ranges [a, b) covering [0, Q), at most `block_qubits` wide, none cutting a gate.

  Gates of this parity act on bonds (q, q+1) with q % 2 == parity; a range edge
  at e would cut one iff (e - parity) is odd.
  """
  if block_qubits < 2:
    raise ValueError(f"block_qubits must be >= 2 (one gate spans two indices), got {block_qubits}.")
  edges = [0]
  while edges[-1] < num_qubits:
    end = min(edges[-1] + block_qubits, num_qubits)
    if end < num_qubits and (end - parity) % 2:
      end -= 1
    edges.append(end)
  return list(zip(edges[:-1], edges[1:]))


def block_matrix(layer_gates, start: int, stop: int, parity: int):
  """The 2^(stop-start) square matrix of this parity's gates inside [start, stop)."""
  eye = jnp.eye(2, dtype=layer_gates.dtype)
  factors, q = [], start
  if (q - parity) % 2:
    factors.append(eye)
    q += 1
  while q + 1 < stop:
    factors.append(layer_gates[q].reshape(4, 4))
    q += 2
  if q < stop:
    factors.append(eye)
  matrix = factors[0]
  for factor in factors[1:]:
    matrix = jnp.kron(matrix, factor)
  return matrix


def _sublayer_blocks(layer_gates, num_qubits, parity, block_qubits):
  """This parity's block matrices in the order their passes run: the last range holds the
  least significant bits, so it goes first."""
  ranges = reversed(fused_blocks(num_qubits, parity, block_qubits))
  return [block_matrix(layer_gates, start, stop, parity) for start, stop in ranges]


def _pass(block, state, precision):
  """One fused pass: the block on the lowest bits of the flat state, rotated to the top."""
  rows = state.reshape(-1, block.shape[0])
  return lax.dot_general(block, rows, (((1,), (1,)), ((), ())), precision=precision).reshape(-1)


def _apply_sublayer(state, layer_gates, num_qubits, parity, block_qubits, precision):
  for block in _sublayer_blocks(layer_gates, num_qubits, parity, block_qubits):
    state = _pass(block, state, precision)
  return state


# --- Fused backward ----------------------------------------------------------------
# Autodiff through a sublayer's passes transposes each GEMM's result back to the row
# layout and differentiates the Kronecker products entry by entry. The custom VJP below
# does what the chain rule needs pass by pass, in reverse: the state's cotangent as one
# GEMM that lands directly in the previous pass's layout (G^T B), the block's gradient as
# one GEMM over the 2^(Q-b) rows (G R), and the gates' gradient from the small block
# gradients through the Kronecker products once.


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _fused_sublayer(state, layer_gates, num_qubits, parity, block_qubits, precision):
  return _apply_sublayer(state, layer_gates, num_qubits, parity, block_qubits, precision)


def _fused_sublayer_fwd(state, layer_gates, num_qubits, parity, block_qubits, precision):
  inputs = []
  for block in _sublayer_blocks(layer_gates, num_qubits, parity, block_qubits):
    inputs.append(state)
    state = _pass(block, state, precision)
  return state, (inputs, layer_gates)


def _fused_sublayer_bwd(num_qubits, parity, block_qubits, precision, residuals, cotangent):
  inputs, layer_gates = residuals
  blocks, blocks_vjp = jax.vjp(
    lambda g: _sublayer_blocks(g, num_qubits, parity, block_qubits), layer_gates
  )
  block_grads = [None] * len(blocks)
  for i in reversed(range(len(blocks))):
    size = blocks[i].shape[0]
    grid = cotangent.reshape(size, -1)  # the pass's output as (block bits, the rest)
    rows = inputs[i].reshape(-1, size)
    block_grads[i] = lax.dot_general(grid, rows, (((1,), (0,)), ((), ())), precision=precision)
    cotangent = lax.dot_general(grid, blocks[i], (((0,), (0,)), ((), ())), precision=precision)
    cotangent = cotangent.reshape(-1)
  (gates_grad,) = blocks_vjp(block_grads)
  return cotangent, gates_grad


_fused_sublayer.defvjp(_fused_sublayer_fwd, _fused_sublayer_bwd)


def _first_even_sublayer(layer_gates, num_qubits: int):
  """The even gates of the first layer on |0...0>: a Kronecker product of gate columns.

  Gate q on |00> gives its column (c, d) = (0, 0), so no pass over the state is needed.
  """
  state = jnp.ones((1,), layer_gates.dtype)
  for bond in range(0, num_qubits - 1, 2):
    state = jnp.kron(state, layer_gates[bond].reshape(4, 4)[:, 0])
  if num_qubits % 2:
    state = jnp.kron(state, jnp.eye(2, dtype=layer_gates.dtype)[0])
  return state


# Jitted: eagerly, every contraction would compile on its own (seconds per new Q).
@functools.partial(
  jax.jit,
  static_argnames=(
    "nonlinearity",
    "precision",
    "remat",
    "block_qubits",
    "scan_layers",
    "fused_backward",
  ),
)
def adtn_generate(
  w: ADTN,
  nonlinearity: str = "relu",
  *,
  precision=None,
  remat: bool = False,
  block_qubits: int | None = None,
  scan_layers: bool = False,
  fused_backward: bool = False,
):
  """The flat vector of length 2^Q generated by the deep tensor network.

  Args:
    w: the generator: gates (M, Q-1, 2, 2, 2, 2), gates[m, q] acting on bond q, and
      the scalar output scale.
    nonlinearity: name in NONLINEARITIES, applied between layers (not after the last).
    precision: passed to each block product.
    remat: recompute each layer's intermediate states in the backward pass
      instead of storing them (memory M states instead of M * 2Q/b).
    block_qubits: b, the width of the fused blocks (2: one gate per pass);
      None lets `execution.adtn_block_qubits` choose for the device.
    scan_layers: run layers 2..M as one `lax.scan` instead of a Python loop, so
      XLA compiles one layer instead of M: about half the compile time on CPU
      at M = 8 (`benchmarks.adtn_generator`), where XLA:GPU compiles for tens of
      seconds; the same numbers.

    fused_backward: differentiate each sublayer by its custom VJP ("Fused backward"
      above) instead of autodiff through its passes: the same gradients, and on CPU the
      same speed (benchmarks/results/adtn_generator_cpu.md), so it stays opt-in; it is
      where a kernel fusing the backward's two GEMMs per pass would go.

  The backward pass keeps the state entering each pass (2Q/b per layer, not Q-1), or
  only each layer's input with `remat`.
  """
  gates, scale, num_qubits = w.gates, w.scale, w.num_qubits
  _check_gates(gates, num_qubits)
  activation = get_nonlinearity(nonlinearity)
  if block_qubits is None:
    block_qubits = execution.adtn_block_qubits(num_qubits)
  block_qubits = min(block_qubits, num_qubits)

  sublayer = _fused_sublayer if fused_backward else _apply_sublayer

  def layer(state, layer_gates, first):
    if first:
      state = _first_even_sublayer(layer_gates, num_qubits)
    else:
      state = sublayer(state, layer_gates, num_qubits, 0, block_qubits, precision)
    return sublayer(state, layer_gates, num_qubits, 1, block_qubits, precision)

  if remat:
    layer = jax.checkpoint(layer, static_argnums=(2,))

  def next_layer(state, layer_gates):
    return layer(activation(state), layer_gates, False), None

  state = layer(None, gates[0], True)
  if scan_layers:
    state, _ = lax.scan(next_layer, state, gates[1:])
  else:
    for layer_gates in gates[1:]:
      state, _ = next_layer(state, layer_gates)
  return scale * state


def adtn_ranks_for_budget(size: int, budget) -> int:
  """The most layers M whose ADTN for `size` numbers stays within `budget` (count or fraction), >= 1."""
  budget = shapes_lib.budget_count(budget, size)
  return max(1, (budget - 1) // (16 * (adtn_num_qubits(size) - 1)))


def adtn_to_dense(
  w: ADTN,
  shape,
  nonlinearity: str = "relu",
  *,
  offset: int = 0,
  precision=None,
  remat: bool = False,
  scan_layers: bool = False,
):
  """The weight of `shape` the generator stands for: entries [offset, offset + prod(shape))
  of the generated vector, reshaped."""
  size, num_qubits = math.prod(shape), w.num_qubits
  if offset < 0 or offset + size > 2**num_qubits:
    raise ValueError(
      f"Q={num_qubits} generates {2**num_qubits} numbers, too few for a weight "
      f"of shape {tuple(shape)} at offset {offset}; Q must be at least "
      f"{adtn_num_qubits(offset + size)}."
    )
  vector = adtn_generate(w, nonlinearity, precision=precision, remat=remat, scan_layers=scan_layers)
  return vector[offset : offset + size].reshape(shape)


def adtn_matmul(
  x, w: ADTN, out_features: int, nonlinearity: str = "relu", *, precision=None, remat: bool = False
):
  """x @ W with the (x.shape[-1], out_features) weight generated once per call."""
  weight = adtn_to_dense(
    w, (x.shape[-1], out_features), nonlinearity, precision=precision, remat=remat
  )
  return jnp.matmul(x, weight.astype(x.dtype), precision=precision)


def adtn_from_dense(
  target,
  num_layers: int,
  nonlinearity: str = "relu",
  *,
  steps: int = 500,
  learning_rate: float = 1e-2,
  seed: int = 0,
  init_noise: float = 1.0,
  precision=None,
  history: list | None = None,
) -> ADTN:
  """An ADTN fitted to `target` (any shape) from a random start; see `adtn_fit`.

  If `history` is a list, the relative error before each step (and after the
  last) is appended to it.
  """
  target = jnp.asarray(target)
  num_qubits = adtn_num_qubits(target.size)
  start = adtn_init_gates(jax.random.key(seed), num_qubits, num_layers, init_noise, target.dtype)
  fitted, errors = adtn_fit(
    target, start, nonlinearity, steps=steps, learning_rate=learning_rate, precision=precision
  )
  if history is not None:
    history.extend(float(e) for e in errors)
  return fitted


def adtn_init_gates(key, num_qubits: int, num_layers: int, noise: float = 1.0, dtype=jnp.float32):
  """Orthogonal gates near the identity: the Q factor of I + noise * N(0, 1).

  Why orthogonal: each gate then preserves the state's norm exactly, so with
  the identity nonlinearity the generated vector has norm 1 for any M and Q
  (ReLU removes about half the energy per layer, a factor 2^-(M-1)/2 that
  `init_scale` absorbs). Plain `I + noise * N` gates are norm-preserving only
  on average; their product makes log-normal amplitudes, and the vector both
  shrinks with depth and concentrates on few entries. Measured at Q = 14 (4
  seeds), participation ratio (sum w^2)^2 / (n sum w^4) (1/3 for Gaussian
  entries): plain gates 0.02-0.05 for any M; orthogonal with noise 1.0,
  identity nonlinearity 0.06 / 0.09 / 0.25 at M = 2 / 4 / 8, ReLU 0.07 /
  0.12 / 0.11. noise -> 0 gives the identity (generated vector: one spike);
  large noise gives Haar-like random gates.
  """
  shape = adtn_gate_shape(num_qubits, num_layers)
  if noise < 0:
    raise ValueError(f"init noise must be >= 0, got {noise}.")
  return _orthogonal_near_identity(key, shape[:2], noise, jnp.dtype(dtype)).reshape(shape)


# Jitted because eager QR and its helpers compile op by op (about a second per shape on CPU).
@functools.partial(jax.jit, static_argnums=(1, 3))
def _orthogonal_near_identity(key, batch_shape, noise, dtype):
  # QR in float32 at least: LAPACK has no bfloat16 / float16 kernels.
  work = jnp.promote_types(dtype, jnp.float32)
  noise_4x4 = jax.random.normal(key, batch_shape + (4, 4), work)
  near_identity = jnp.eye(4, dtype=work) + noise * noise_4x4
  q, r = jnp.linalg.qr(near_identity)
  # Fix the QR sign freedom so that noise -> 0 gives I, not a diagonal of +-1.
  sign = jnp.where(jnp.diagonal(r, axis1=-2, axis2=-1) < 0, -1, 1).astype(work)
  return (q * sign[..., None, :]).astype(dtype)


def init_scale(
  gates,
  target_std: float,
  nonlinearity: str = "relu",
  *,
  size: int | None = None,
  offset: int = 0,
  precision=None,
):
  """Scale giving entries [offset, offset+size) of the generated vector the std `target_std`."""
  size = 2 ** (gates.shape[1] + 1) - offset if size is None else size
  vector = adtn_generate(ADTN(gates, jnp.ones((), gates.dtype)), nonlinearity, precision=precision)
  vector = vector[offset : offset + size]
  std = jnp.std(vector)
  # A vector that is constant on the slice (e.g. size 1) has std 0: fall back to its RMS.
  std = jnp.where(std > 0, std, jnp.sqrt(jnp.mean(vector**2)))
  return (target_std / std).astype(gates.dtype)


def adtn_fit(
  target,
  gates,
  nonlinearity: str = "relu",
  *,
  offset: int = 0,
  steps: int = 500,
  learning_rate: float = 1e-2,
  precision=None,
):
  """Fits gates and scale so the generated entries [offset, offset+n) match `target`.

  Adam (optax) on the squared relative Frobenius error, from the given gates
  and the least-squares scale for them. The target is normalised to unit norm
  while fitting so that the scale is O(1) like the gates (Adam's steps are
  the same size for every parameter).

  Args:
    target: array of any shape; its flat entries are matched.
    gates: starting gates (M, Q-1, 2, 2, 2, 2); the scale starts at its least-squares
      value for them.

  Returns:
    (ADTN, errors): the best generator seen and the relative error
    ||generated - target|| / ||target|| before each step and after the last
    (a NumPy array of length steps + 1).
  """
  target = jnp.ravel(jnp.asarray(target, gates.dtype))
  size, num_qubits = target.shape[0], gates.shape[1] + 1
  if offset < 0 or offset + size > 2**num_qubits:
    raise ValueError(
      f"Q={num_qubits} generates {2**num_qubits} numbers, too few for "
      f"{size} targets at offset {offset}."
    )
  norm = jnp.linalg.norm(target)
  unit = target / jnp.where(norm > 0, norm, 1)

  def generated(params):
    vector = adtn_generate(ADTN(*params), nonlinearity, precision=precision)
    return vector[offset : offset + size]

  def loss(params):
    return jnp.sum((generated(params) - unit) ** 2)

  start = generated((gates, jnp.ones((), gates.dtype)))
  scale = jnp.vdot(start, unit) / jnp.maximum(jnp.vdot(start, start), jnp.finfo(gates.dtype).tiny)
  optimizer = optax.adam(learning_rate)

  def step(carry, _):
    params, opt_state, best, best_loss = carry
    value, grads = jax.value_and_grad(loss)(params)
    best = jax.tree.map(lambda b, p: jnp.where(value < best_loss, p, b), best, params)
    best_loss = jnp.minimum(value, best_loss)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state, best, best_loss), value

  @jax.jit
  def run(params):
    init = (params, optimizer.init(params), params, jnp.asarray(jnp.inf, gates.dtype))
    (last, _, best, best_loss), losses = jax.lax.scan(step, init, None, length=steps)
    last_loss = loss(last)
    best = jax.tree.map(lambda b, p: jnp.where(last_loss < best_loss, p, b), best, last)
    return best, jnp.append(losses, last_loss)

  (gates, scale), losses = run((gates, scale.astype(gates.dtype)))
  return ADTN(gates, scale * norm), np.sqrt(np.asarray(losses))
