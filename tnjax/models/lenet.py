"""LeNet-5 (LeCun et al. 1998) for 28x28 / 32x32 images, every layer swappable.

conv1 5x5 -> 6 (SAME on 28x28 inputs, so the classic 32x32 geometry follows) ->
ReLU -> maxpool 2 -> conv2 5x5 -> 16 (VALID) -> ReLU -> maxpool 2 -> fc1 -> 120 ->
ReLU -> fc2 -> 84 -> ReLU -> output. Max pooling and ReLU, as in the modern
variant the compression papers train. Dense: 61,706 parameters on MNIST.
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.models.layer_specs import LayerSpecs
from tnjax.models.pooling import max_pool_2x2
from tnjax.nn import make_conv, make_dense

LAYER_NAMES = ("conv1", "conv2", "fc1", "fc2", "output")


class LeNet5(nnx.Module):
  """LeNet-5; `conv_layer` / `dense_layer` / `layers` choose each layer's format."""

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    conv_layer=None,
    dense_layer=None,
    layers=None,
    dtype=None,
    rngs: nnx.Rngs,
  ):
    specs = LayerSpecs("lenet5", LAYER_NAMES, conv_layer, dense_layer, layers)
    height, width, channels = image_shape
    # 28x28 inputs get SAME padding on conv1: the 32x32 original's 28x28 maps.
    first_padding = "SAME" if (height, width) == (28, 28) else "VALID"
    self.conv1 = make_conv(
      specs.conv("conv1"), channels, 6, 5, padding=first_padding, dtype=dtype, rngs=rngs
    )
    self.conv2 = make_conv(specs.conv("conv2"), 6, 16, 5, padding="VALID", dtype=dtype, rngs=rngs)
    if first_padding == "VALID":
      height, width = height - 4, width - 4
    height, width = (height // 2 - 4) // 2, (width // 2 - 4) // 2
    if min(height, width) < 1:
      raise ValueError(f"Images {image_shape} are too small for LeNet-5 (need at least 28x28).")
    self.fc1 = make_dense(specs.dense("fc1"), height * width * 16, 120, dtype=dtype, rngs=rngs)
    self.fc2 = make_dense(specs.dense("fc2"), 120, 84, dtype=dtype, rngs=rngs)
    self.output = make_dense(specs.output(), 84, num_classes, dtype=dtype, rngs=rngs)

  def __call__(self, images):
    x = max_pool_2x2(jax.nn.relu(self.conv1(images)))
    x = max_pool_2x2(jax.nn.relu(self.conv2(x)))
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    x = jax.nn.relu(self.fc2(jax.nn.relu(self.fc1(x))))
    return self.output(x)
