"""BTTDense: a Block Tensor-Train dense layer (Qiu et al. 2024), two batched GEMMs.

A format that lives in this one module (spec and layer register themselves): plans,
configs (`{"kind": "btt", "rank": 4}`), sizing by ratio / error / budget and the layer
table know it without any other file naming it.
"""

from __future__ import annotations

import dataclasses
import math

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.dense_base import FactorizedDense, pad_features
from tnjax.nn.spec import INITS, LayerSpec, check_mode_shapes
from tnjax.tensor import btt


@dataclasses.dataclass(frozen=True)
class BTTSpec(LayerSpec):
  """Block Tensor-Train (Qiu et al. 2024, "Compute Better Spent").

  Attributes:
    rank: the BTT rank r (1: a Monarch matrix); at most min(m2, n1).
    in_shape, out_shape: two modes each (m1, m2) -> (n1, n2); None: balanced, as the
      paper. Few large blocks (e.g. (8, 512) -> (512, 8) at a higher rank) store as
      many weights in larger GEMMs, which run faster on a CPU (benchmarks/results/btt_cpu.md).
    init: 'mup' (the paper's: each core drawn as its own dense layer under muP, and each
      core's learning rate scaled by in_features / (its fan-in x 2), read by
      tnjax.training.optim.with_layer_rates; a layer fitted by from_dense keeps the
      model's rate), or a dense initialiser whose variance W then has (glorot_normal,
      he_normal, lecun_normal; learning rates unscaled).
  """

  rank: int = 4
  in_shape: tuple[int, ...] | None = None
  out_shape: tuple[int, ...] | None = None
  init: str = "mup"
  order = 2  # check_mode_shapes reads it: BTT has two cores
  inits = INITS + ("mup",)
  int_fields = ("rank",)
  kind = "btt"
  size_fields = ("rank",)

  def largest_useful_size(self, layer) -> int:
    return btt.btt_max_rank(layer.in_shape, layer.out_shape)

  def fit_errors(self, weight) -> dict:
    # from_dense truncates each block's SVD, so every rank's error comes from one SVD per block.
    shapes = btt.btt_shapes(weight.shape[0], weight.shape[1], self.in_shape, self.out_shape)
    return btt.btt_truncation_errors(weight, *shapes)

  def __post_init__(self):
    super().__post_init__()
    if self.rank < 1:
      raise ValueError(f"BTTSpec.rank must be >= 1, got {self.rank}.")
    for name in ("in_shape", "out_shape"):
      value = getattr(self, name)
      if value is not None and len(tuple(value)) != 2:
        raise ValueError(f"BTTSpec.{name}={value} must have two modes, e.g. (64, 64).")
    check_mode_shapes(self)


class BTTDense(FactorizedDense):
  """y = x @ W + b with W a rank-r Block Tensor-Train matrix: for each of m1 input blocks
  an (m2, r n2) matrix, then for each of n2 output blocks an (m1 r, n1) matrix.

  Args: as FactorizedDense (in_features, out_features, spec: BTTSpec, dtype,
  param_dtype, precision, rngs). `from_dense` is the blockwise truncated SVD (exact
  optimum in Frobenius norm).
  """

  spec_type = BTTSpec
  adds_bias = True  # inside btt_matmul, before its final transpose

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    self.in_shape, self.out_shape = btt.btt_shapes(
      self.in_features, self.out_features, spec.in_shape, spec.out_shape
    )
    (m1, m2), (n1, n2), rank = self.in_shape, self.out_shape, spec.rank
    shapes = ((m1, m2, rank, n2), (n2, m1, rank, n1))
    fans = ((m2, rank * n2), (m1 * rank, n1))  # each core's (fan-in, fan-out) per block
    if spec.init == "mup":
      # muP per core: std = fan_in^-1/2 min(1, (fan_out / fan_in)^1/2); a core's learning
      # rate is in_features / fan_in / 2 times the layer's (Qiu et al.'s heuristic keeps
      # feature updates the size a dense layer's would be).
      stds = [math.sqrt(1.0 / i) * min(1.0, math.sqrt(o / i)) for i, o in fans]
      rates = [self.in_features / i / 2.0 for i, _ in fans]
    else:
      variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
      stds = [init_lib.product_stds(variance, num_factors=2, summed_terms=rank)] * 2
      rates = [1.0, 1.0]
    self.first, self.second = (
      nnx.Param(init_lib.normal(rngs.params(), s, std, self.param_dtype), lr_scale=rate)
      for s, std, rate in zip(shapes, stds, rates)
    )

  @property
  def rank(self) -> int:
    return self.first.shape[2]

  @property
  def weight_params(self) -> int:
    return btt.btt_num_params(self.in_shape, self.out_shape, self.rank)

  @property
  def shape_description(self) -> str:
    (m1, m2), (n1, n2) = self.in_shape, self.out_shape
    return f"{m1}x{m2} -> {n1}x{n2} rank {self.rank}"

  def weights(self) -> btt.BTTMatrix:
    return btt.BTTMatrix(self.first[...], self.second[...])

  def to_dense(self):
    full = btt.btt_to_dense(self.weights(), precision=self.precision)
    return full[: self.in_features, : self.out_features]

  def _matmul(self, x):
    x = pad_features(x, math.prod(self.in_shape))
    bias = None
    if self.bias is not None:
      bias = pad_features(self.bias[...].astype(x.dtype), math.prod(self.out_shape))
    y = btt.btt_matmul(
      x, self.weights().astype(x.dtype), bias, precision=self.precision, method=self.spec.method
    )
    return y[..., : self.out_features]

  def _fit(self, weight):
    w = btt.btt_from_dense(weight, self.in_shape, self.out_shape, self.rank)
    self.first[...], self.second[...] = (
      w.first.astype(self.param_dtype),
      w.second.astype(self.param_dtype),
    )
    for core in (self.first, self.second):  # fitted weights fine-tune at the model's rate:
      core.set_metadata("lr_scale", 1.0)  # the muP rates are for training from muP's init
