"""What ADTNDense and ADTNConv share: the generated weight, and SharedADTN generators.

The weight (a dense (in, out) matrix or an HWIO conv kernel) is rebuilt from
the gates once per call: the generation does not depend on x, so it costs
the same for a batch of 1 or 1000, and a jitted training step runs it once.

Parameter counting:
  * A layer with its own ADTN stores 16 M (Q-1) gate entries and one output
    scale: `weight_params = adtn_num_params(Q, M) = 16 M (Q-1) + 1`, with
    Q = ceil(log2(number of weight entries)).
  * Several layers may share one generator (`SharedADTN`) that generates the
    concatenation of their weights, each layer reading its slice at `offset`.
    The gates are counted once, in the generator (a row of its own in
    `format_table`, replacing no dense weight); each layer counts only its own
    output scale (weight_params = 1), since layers with different fan-in need
    different scales. k layers sharing: 16 M (Q-1) + k in all.

For VGG-16 (ImageNet) FC6 25088x4096 and FC7 4096x4096 with the default M = 2:
two ADTNs give 833 + 737 = 1570 weight parameters (Q = 27 and 24); one shared
ADTN (2^27 >= 25088*4096 + 4096^2) gives 16*2*26 + 2 = 834. The paper's 424
(two ADTNs, CIFAR-10 VGG-16) needs its supplement's Q, M and counting; see
tnjax/tensor/adtn.py for more counts.

A shared generator is an NNX shared reference: it needs NNX graph mode (the
default in flax 0.12), not tree mode.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.base import CountedModule
from tnjax.nn.spec import ADTNSpec
from tnjax.tensor import adtn


class SharedADTN(CountedModule):
  """One ADTN generating the weights of several layers, laid end to end.

  Pass it to `ADTNDense` / `ADTNConv` as `generator=` with `offset=` (e.g.
  `offsets[i]` for the i-th of the `sizes` given here). It holds the gates
  only; the layers hold their scales and biases.

  Args:
    sizes: the number of weight entries of each layer it feeds.
    spec: layers M, nonlinearity and init noise of the generator.
    param_dtype: dtype the gates are stored in.
    precision: lax precision of the gate contractions.
    rngs: initialisation keys.
  """

  def __init__(
    self,
    sizes: int | Sequence[int],
    spec: ADTNSpec = ADTNSpec(),
    *,
    param_dtype=jnp.float32,
    precision=None,
    rngs: nnx.Rngs,
  ):
    sizes = (sizes,) if isinstance(sizes, int) else tuple(int(s) for s in sizes)
    if not sizes or any(s < 1 for s in sizes):
      raise ValueError(f"SharedADTN.sizes must be positive ints, got {sizes}.")
    self.sizes = sizes
    self.offsets = tuple(sum(sizes[:i]) for i in range(len(sizes)))
    self.num_qubits = adtn.adtn_num_qubits(sum(sizes))
    self.spec, self.param_dtype, self.precision = spec, param_dtype, precision
    self.bias = None
    self.gates = nnx.Param(
      adtn.adtn_init_gates(
        rngs.params(), self.num_qubits, spec.layers, spec.init_noise, param_dtype
      )
    )

  @property
  def num_layers(self) -> int:
    return self.gates.shape[0]

  @property
  def weight_params(self) -> int:
    return self.gates.size

  @property
  def dense_weight_params(self) -> int:
    return 0  # the layers it feeds count their dense sizes

  @property
  def shape_description(self) -> str:
    return f"generator Q={self.num_qubits} M={self.num_layers} for {len(self.sizes)} weights"


class GeneratedWeight:
  """The ADTN parameters and weight generation shared by ADTNDense and ADTNConv."""

  fit_options = ("steps", "learning_rate", "seed")

  def _init_generated(self, spec: ADTNSpec, shape, fan_in, fan_out, generator, offset, rngs):
    assert tuple(shape) == self.weight_shape  # the family's own layout
    size = math.prod(shape)
    self.generator = generator
    if generator is None:
      if offset not in (None, 0):
        raise ValueError(f"{type(self).__name__}: offset={offset} needs a shared generator.")
      self.offset = 0
      self.gates = nnx.Param(
        adtn.adtn_init_gates(
          rngs.params(), adtn.adtn_num_qubits(size), spec.layers, spec.init_noise, self.param_dtype
        )
      )
    else:
      if offset is None or offset < 0 or offset + size > 2**generator.num_qubits:
        raise ValueError(
          f"{type(self).__name__}: offset={offset} does not fit a weight of {size} "
          f"entries in a generator of 2^{generator.num_qubits} numbers."
        )
      self.offset = int(offset)
      self.gates = None
    target_std = init_lib.target_variance(spec.init, fan_in, fan_out) ** 0.5
    self.scale = nnx.Param(
      adtn.init_scale(
        self._gates(),
        self.num_qubits,
        target_std,
        self._adtn_spec.nonlinearity,
        size=size,
        offset=self.offset,
      ).astype(self.param_dtype)
    )
    self.fit_history = None

  @property
  def _adtn_spec(self) -> ADTNSpec:
    # With a shared generator, its spec decides layers and nonlinearity.
    return self.spec if self.generator is None else self.generator.spec

  def _gates_variable(self) -> nnx.Param:
    return self.gates if self.generator is None else self.generator.gates

  def _gates(self):
    return self._gates_variable()[...]

  @property
  def num_qubits(self) -> int:
    return self._gates_variable().shape[1] + 1

  @property
  def num_layers(self) -> int:
    return self._gates_variable().shape[0]

  @property
  def weight_params(self) -> int:
    if self.generator is None:
      return adtn.adtn_num_params(self.num_qubits, self.num_layers)
    return 1  # the scale; the gates are counted in the generator

  def _adtn_description(self) -> str:
    shared = "" if self.generator is None else f" shared@{self.offset}"
    return f"ADTN Q={self.num_qubits} M={self.num_layers} {self._adtn_spec.nonlinearity}{shared}"

  def weights(self) -> adtn.ADTN:
    """The generator (shared gates, if any) and this layer's scale."""
    return adtn.ADTN(self._gates(), self.scale[...])

  def to_dense(self):
    spec = self._adtn_spec
    return adtn.adtn_to_dense(
      self.weights(),
      self.weight_shape,
      spec.nonlinearity,
      offset=self.offset,
      precision=self.precision,
      remat=spec.remat,
      scan_layers=spec.scan_layers,
    )

  def _fit(self, weight, steps: int = 500, learning_rate: float = 1e-2, seed: int = 0):
    """Fits this layer's own ADTN to `weight` (Adam on the relative error; see adtn_fit).

    `fit_history` holds the relative error per step; the best parameters seen are kept.
    """
    if self.generator is not None:
      raise ValueError(
        f"{type(self).__name__}.from_dense fits an own ADTN; a shared generator "
        "is fitted to all its layers at once, which from_dense does not do."
      )
    history = []
    w = adtn.adtn_from_dense(
      weight,
      self.num_layers,
      self.spec.nonlinearity,
      steps=steps,
      learning_rate=learning_rate,
      seed=seed,
      init_noise=self.spec.init_noise,
      precision=self.precision,
      history=history,
    )
    self.gates[...] = w.gates.astype(self.param_dtype)
    self.scale[...] = jnp.asarray(w.scale).astype(self.param_dtype)
    self.fit_history = tuple(history)
