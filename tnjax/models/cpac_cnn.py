"""The CPAC-Conv paper's MNIST network (Wang, Guo & Yue 2021), convs swappable.

conv(1 -> N, 3x3, valid) -> maxpool 2 -> ReLU -> conv(N -> N, 3x3, valid) ->
maxpool 2 -> ReLU -> flatten -> Linear 50 -> Linear classes. With conv_layer
{'kind': 'cp', 'rank': R} the convs are CPAC-Conv; the default {'kind':
'dense', 'use_bias': False} is the paper's CNN baseline. Layers: conv1, conv2,
hidden, output; `layers` overrides any of them.
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.models.layer_specs import LayerSpecs
from tnjax.models.pooling import max_pool_2x2
from tnjax.nn import make_conv, make_dense

LAYER_NAMES = ("conv1", "conv2", "hidden", "output")
PAPER_CONV = {"kind": "dense", "use_bias": False}  # the paper's CNN baseline


class CPACNet(nnx.Module):
  """Two (or, for the paper's second sweep, one) factorised 3x3 valid convs with
  pooling, then two linear layers."""

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    channels: int = 8,
    hidden_features: int = 50,
    convs: int = 2,
    conv_layer=None,
    dense_layer=None,
    layers=None,
    dtype=None,
    rngs: nnx.Rngs,
  ):
    conv_layer = conv_layer or PAPER_CONV
    specs = LayerSpecs("cpac_cnn", LAYER_NAMES, conv_layer, dense_layer, layers)
    height, width, in_channels = image_shape
    self.conv1 = make_conv(
      specs.conv("conv1"), in_channels, channels, 3, padding="VALID", dtype=dtype, rngs=rngs
    )
    if convs not in (1, 2):
      raise ValueError(f"CPACNet convs={convs}: the paper's nets have 1 or 2 conv layers.")
    self.conv2 = (
      make_conv(specs.conv("conv2"), channels, channels, 3, padding="VALID", dtype=dtype, rngs=rngs)
      if convs == 2
      else None
    )
    for _ in range(convs):  # valid 3x3 convs, each followed by a 2x2 pool
      height, width = (height - 2) // 2, (width - 2) // 2
    if min(height, width) < 1:
      raise ValueError(f"Images {image_shape} are too small for CPACNet (need at least 10x10).")
    self.hidden = make_dense(
      specs.dense("hidden"), height * width * channels, hidden_features, dtype=dtype, rngs=rngs
    )
    self.output = make_dense(specs.output(), hidden_features, num_classes, dtype=dtype, rngs=rngs)

  def __call__(self, images):
    x = jax.nn.relu(max_pool_2x2(self.conv1(images)))
    if self.conv2 is not None:
      x = jax.nn.relu(max_pool_2x2(self.conv2(x)))
    return self.output(self.hidden(x.reshape(x.shape[0], math.prod(x.shape[1:]))))
