"""A small CIFAR-10 CNN, every layer swappable: the sketch experiments' CIFAR net.

conv1 3x3 -> 32, conv2 3x3 -> 32, maxpool, dropout; conv3 3x3 -> 64, conv4 3x3 ->
64, maxpool, dropout; fc1 -> 512, dropout; output. This is the widely used Keras
CIFAR-10 example network (SAME padding on the first conv of each block, VALID on
the second), the kind of mid-size CNN Kasiviswanathan et al. sketch; their exact
CIFAR-10 network is not published. Dense: 1,250,858 parameters on 32x32x3.
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.models.layer_specs import LayerSpecs
from tnjax.models.pooling import max_pool_2x2
from tnjax.nn import make_conv, make_dense

LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "fc1", "output")


class SmallCNN(nnx.Module):
  """Two conv blocks and one hidden FC layer, with dropout (train mode only)."""

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    conv_layer=None,
    dense_layer=None,
    layers=None,
    conv_dropout: float = 0.25,
    dense_dropout: float = 0.5,
    hidden_features: int = 512,
    dtype=None,
    rngs: nnx.Rngs,
  ):
    specs = LayerSpecs("small_cnn", LAYER_NAMES, conv_layer, dense_layer, layers)
    height, width, channels = image_shape
    self.conv1 = make_conv(
      specs.conv("conv1"), channels, 32, 3, padding="SAME", dtype=dtype, rngs=rngs
    )
    self.conv2 = make_conv(specs.conv("conv2"), 32, 32, 3, padding="VALID", dtype=dtype, rngs=rngs)
    self.conv3 = make_conv(specs.conv("conv3"), 32, 64, 3, padding="SAME", dtype=dtype, rngs=rngs)
    self.conv4 = make_conv(specs.conv("conv4"), 64, 64, 3, padding="VALID", dtype=dtype, rngs=rngs)
    for _ in range(2):  # each block: SAME conv, VALID conv (-2), pool (/2)
      height, width = (height - 2) // 2, (width - 2) // 2
    if min(height, width) < 1:
      raise ValueError(f"Images {image_shape} are too small for SmallCNN (need at least 14x14).")
    self.fc1 = make_dense(
      specs.dense("fc1"), height * width * 64, hidden_features, dtype=dtype, rngs=rngs
    )
    self.output = make_dense(specs.output(), hidden_features, num_classes, dtype=dtype, rngs=rngs)
    self.conv_dropout = nnx.Dropout(conv_dropout, rngs=rngs)
    self.dense_dropout = nnx.Dropout(dense_dropout, rngs=rngs)

  def __call__(self, images):
    x = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(images))))
    x = self.conv_dropout(max_pool_2x2(x))
    x = jax.nn.relu(self.conv4(jax.nn.relu(self.conv3(x))))
    x = self.conv_dropout(max_pool_2x2(x))
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    return self.output(self.dense_dropout(jax.nn.relu(self.fc1(x))))
