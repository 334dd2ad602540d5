"""TuckerConv: the Tucker-2 convolution (Kim et al. 2016), the sketch paper's baseline."""

from __future__ import annotations

from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.conv_base import FactorizedConv, check_dense_kernel
from tnjax.nn.spec import TuckerSpec
from tnjax.tensor import tucker


class TuckerConv(FactorizedConv):
  """conv(x, K) + b with K in Tucker-2 form: 1x1 (in -> R3), kxk core (R3 -> R4), 1x1 (R4 -> out).

  The three factors are iid normal with one std chosen so K (a sum of R3 R4
  products of three entries) has the variance of `spec.init`.
  """

  spec_type = TuckerSpec

  def __init__(self, in_channels, out_channels, kernel_size, spec: TuckerSpec = TuckerSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_channels, out_channels, kernel_size, spec, rngs=rngs, **kwargs)
    tucker.check_tucker_ranks(self.in_channels, self.out_channels, spec.in_rank, spec.out_rank)
    variance = init_lib.target_variance(spec.init, self.fan_in, self.fan_out)
    std = init_lib.product_stds(variance, num_factors=3, summed_terms=spec.in_rank * spec.out_rank)
    normal = lambda shape: nnx.Param(init_lib.normal(rngs.params(), shape, std, self.param_dtype))
    self.core = normal(self.kernel_size + (spec.in_rank, spec.out_rank))
    self.in_factor = normal((self.in_channels, spec.in_rank))
    self.out_factor = normal((self.out_channels, spec.out_rank))

  def _factors(self, dtype=None):
    values = (self.core[...], self.in_factor[...], self.out_factor[...])
    return tucker.Tucker2(*(v if dtype is None else v.astype(dtype) for v in values))

  @property
  def weight_params(self) -> int:
    return self.core.size + self.in_factor.size + self.out_factor.size

  @property
  def shape_description(self) -> str:
    return f"{super().shape_description} Tucker {self.spec.in_rank}-{self.spec.out_rank}"

  def to_dense(self):
    return tucker.tucker2_to_dense(self._factors())

  def _conv(self, x, padding):
    return tucker.tucker2_conv(x, self._factors(x.dtype), strides=self.strides, padding=padding,
                               dilation=self.kernel_dilation, precision=self.precision)

  @classmethod
  def from_dense(cls, kernel, bias=None, spec: TuckerSpec = TuckerSpec(), **kwargs):
    """Truncated HOSVD of a trained HWIO kernel (exact at full ranks)."""
    kernel, (kh, kw, n_in, n_out) = check_dense_kernel(kernel)
    layer = cls(n_in, n_out, (kh, kw), spec, rngs=nnx.Rngs(0), **kwargs)
    factors = tucker.tucker2_hosvd(kernel, spec.in_rank, spec.out_rank)
    layer.core[...] = factors.core.astype(layer.param_dtype)
    layer.in_factor[...] = factors.in_factor.astype(layer.param_dtype)
    layer.out_factor[...] = factors.out_factor.astype(layer.param_dtype)
    layer._set_bias(bias)
    return layer
