"""TTDense: the TT-layer of Novikov et al. (2015) as a Flax NNX module."""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
from flax import nnx

from tnjax.nn import init as init_lib
from tnjax.nn.base import FactorizedDense, check_dense_weight
from tnjax.nn.spec import TTSpec
from tnjax.tensor import shapes, tt


def resolve_tt_shapes(spec: TTSpec, in_features: int, out_features: int):
  """(in_shape, out_shape) from the spec, or balanced automatic ones.

  Any spec with `in_shape`, `out_shape` and `order` fields works (TTSpec, CPSpec).

  Automatic shapes may cover more features than asked (a prime is padded up);
  explicit shapes must multiply to the feature counts exactly.
  """
  if spec.in_shape is None:
    return shapes.factorize(in_features, spec.order), shapes.factorize(out_features, spec.order)
  in_shape, out_shape = tt.check_shapes(spec.in_shape, spec.out_shape)
  for name, shape, features in (("in_shape", in_shape, in_features),
                                ("out_shape", out_shape, out_features)):
    if math.prod(shape) != features:
      raise ValueError(f"{type(spec).__name__}.{name}={shape} multiplies to {math.prod(shape)}, "
                       f"but the layer has {features} {name[:-6]} features; choose modes whose "
                       f"product is {features} (e.g. tnjax.tensor.factorize({features}, {len(shape)}) = "
                       f"{shapes.factorize(features, len(shape), max_padding=0)}) or leave shapes unset.")
  return in_shape, out_shape


class TTDense(FactorizedDense):
  """y = x @ W + b with W a TT-matrix; W is never formed in the forward pass.

  Core k has shape (r_{k-1}, m_k, n_k, r_k). Cores are drawn iid normal with a
  common std chosen so each entry of the reconstructed W has the variance of
  `spec.init` for the dense layer it replaces: W_ij sums prod(r_1..r_{d-1})
  products of d core entries.
  """

  spec_type = TTSpec

  def __init__(self, in_features: int, out_features: int, spec: TTSpec = TTSpec(), *,
               rngs: nnx.Rngs, **kwargs):
    super().__init__(in_features, out_features, spec, rngs=rngs, **kwargs)
    self.in_shape, self.out_shape = resolve_tt_shapes(spec, self.in_features, self.out_features)
    core_shapes = tt.tt_core_shapes(self.in_shape, self.out_shape, spec.ranks)
    variance = init_lib.target_variance(spec.init, self.in_features, self.out_features)
    paths = math.prod(s[3] for s in core_shapes[:-1])
    std = init_lib.product_stds(variance, num_factors=len(core_shapes), summed_terms=paths)
    self.cores = nnx.List([nnx.Param(init_lib.normal(rngs.params(), s, std, self.param_dtype))
                           for s in core_shapes])

  @property
  def ranks(self) -> tuple[int, ...]:
    """Bond ranks (1, r_1, ..., r_{d-1}, 1)."""
    return tuple(c.shape[0] for c in self.cores) + (1,)

  @property
  def weight_params(self) -> int:
    return sum(math.prod(c.shape) for c in self.cores)

  @property
  def shape_description(self) -> str:
    modes = "x".join(map(str, self.in_shape)) + " -> " + "x".join(map(str, self.out_shape))
    return f"{modes} ranks {'-'.join(map(str, self.ranks[1:-1]))}"

  def _core_values(self, dtype):
    return [c[...].astype(dtype) for c in self.cores]

  def _matmul(self, x):
    padded_in = math.prod(self.in_shape)
    if padded_in > self.in_features:
      x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, padded_in - self.in_features)])
    y = tt.tt_matmul(x, self._core_values(x.dtype), precision=self.precision)
    return y[..., :self.out_features]

  def to_dense(self):
    full = tt.tt_to_dense(self._core_values(self.param_dtype), precision=self.precision)
    return full[:self.in_features, :self.out_features]

  @classmethod
  def from_dense(cls, W, b=None, spec: TTSpec = TTSpec(), *, eps: float | None = None, **kwargs):
    """TT-SVD of a trained weight, ranks capped by `spec.ranks` (and by `eps` if given).

    The returned layer's ranks may be lower than the spec's where W needs fewer.
    """
    W, n_in, n_out = check_dense_weight(W)
    layer = cls(n_in, n_out, spec, rngs=nnx.Rngs(0), **kwargs)
    pad_in = math.prod(layer.in_shape) - n_in
    pad_out = math.prod(layer.out_shape) - n_out
    W = jnp.pad(W, [(0, pad_in), (0, pad_out)])
    cores = tt.tt_svd(W, layer.in_shape, layer.out_shape, max_rank=spec.ranks, eps=eps)
    layer.cores = nnx.List([nnx.Param(c.astype(layer.param_dtype)) for c in cores])
    layer.spec = dataclasses.replace(spec, ranks=layer.ranks[1:-1] or spec.ranks)
    layer._set_bias(b)
    return layer
