"""TuckerConv: the Tucker-2 convolution (Kim et al. 2016), the sketch paper's baseline."""

from __future__ import annotations

import dataclasses
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv
from tnjax.tensor import tucker
from tnjax.nn.spec import LayerSpec


@dataclasses.dataclass(frozen=True)
class TuckerSpec(LayerSpec):
  """Tucker-2 convolution (Kim et al. 2016): channel ranks of a conv kernel.

  Attributes:
    in_rank: R3, channels after the 1x1 input projection.
    out_rank: R4, channels of the core conv before the 1x1 expansion.
  """

  in_rank: int = 16
  out_rank: int = 16
  int_fields = ("in_rank", "out_rank")  # whole numbers (checked in LayerSpec)
  kind = "tucker"
  size_fields = ("in_rank", "out_rank")

  def largest_useful_size(self, layer) -> int:
    return min(layer.weight_shape[-2], layer.weight_shape[-1])

  def size_limits(self, layer) -> dict:
    return {"in_rank": layer.weight_shape[-2], "out_rank": layer.weight_shape[-1]}

  def vbmf_sizes(self, weight) -> dict:
    from tnjax.tensor.vbmf import tucker2_vbmf_ranks  # pylint: disable=g-import-not-at-top

    in_rank, out_rank = tucker2_vbmf_ranks(weight)
    return {"in_rank": in_rank, "out_rank": out_rank}

  def __post_init__(self):
    super().__post_init__()
    if self.in_rank < 1 or self.out_rank < 1:
      raise ValueError(
        f"TuckerSpec.in_rank and out_rank must be >= 1, got in_rank="
        f"{self.in_rank}, out_rank={self.out_rank}."
      )


class TuckerConv(FactorizedConv):
  """conv(x, K) + b with K in Tucker-2 form: 1x1 (in -> R3), kxk core (R3 -> R4), 1x1 (R4 -> out).

  The three factors are iid normal with one std chosen so K (a sum of R3 R4
  products of three entries) has the variance of `spec.init`. `from_dense` is
  the truncated HOSVD (exact at full ranks).

  Args: as FactorizedConv (in_channels, out_channels, kernel_size, spec:
  TuckerSpec, strides, padding, kernel_dilation, dtype, param_dtype, precision, rngs).
  """

  spec_type = TuckerSpec

  def _init_params(self, rngs: nnx.Rngs):
    spec = self.spec
    tucker.check_tucker_ranks(self.in_channels, self.out_channels, spec.in_rank, spec.out_rank)
    variance = init_lib.target_variance(spec.init, self.fan_in, self.fan_out)
    std = init_lib.product_stds(variance, num_factors=3, summed_terms=spec.in_rank * spec.out_rank)
    normal = lambda shape: nnx.Param(init_lib.normal(rngs.params(), shape, std, self.param_dtype))
    self.core = normal(self.kernel_size + (spec.in_rank, spec.out_rank))
    self.in_factor = normal((self.in_channels, spec.in_rank))
    self.out_factor = normal((self.out_channels, spec.out_rank))

  @property
  def weight_params(self) -> int:
    return self.core.size + self.in_factor.size + self.out_factor.size

  @property
  def shape_description(self) -> str:
    return f"{super().shape_description} Tucker {self.spec.in_rank}-{self.spec.out_rank}"

  def weights(self) -> tucker.Tucker2Kernel:
    return tucker.Tucker2Kernel(self.core[...], self.in_factor[...], self.out_factor[...])

  def to_dense(self):
    return tucker.tucker2_to_dense(self.weights())

  def _conv(self, x, padding):
    return tucker.tucker2_conv(
      x,
      self.weights().astype(x.dtype),
      **self._conv_options(padding),
    )

  def _fit(self, weight):
    w = tucker.tucker2_from_dense(weight, self.spec.in_rank, self.spec.out_rank)
    self.core[...] = w.core.astype(self.param_dtype)
    self.in_factor[...] = w.in_factor.astype(self.param_dtype)
    self.out_factor[...] = w.out_factor.astype(self.param_dtype)
