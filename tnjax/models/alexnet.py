"""AlexNet and ZFNet in CIFAR variants (32x32 inputs), every layer swappable.

Both: five convs with BatchNorm + ReLU, 3x3/2 max pooling after conv1, conv2 and
conv5, then fc6 -> fc7 -> output with dropout 0.5. Widths follow the CIFAR ports
common in the compression literature (the ADTN paper's exact CIFAR variants are
in its unavailable supplement):
  * AlexNet: conv1 5x5 -> 64, conv2 5x5 -> 192, conv3 3x3 -> 384, conv4 -> 256,
    conv5 -> 256, fc6/fc7 1024;
  * ZFNet: ZFNet's change to AlexNet, a larger first-layer receptive field and
    wider middle layers: conv1 7x7 -> 96, conv2 5x5 -> 256, conv3..5 3x3 -> 384,
    384, 256, fc6/fc7 1024.
The 1024-wide FC layers (instead of ImageNet's 4096) suit the 4x4x256 feature map.
Layer names: conv1..conv5, fc6, fc7, output.
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.models.layer_specs import LayerSpecs
from tnjax.nn import make_conv, make_dense

ARCHITECTURES = {
  #          (kernel, channels) of conv1..conv5
  "alexnet": ((5, 64), (5, 192), (3, 384), (3, 256), (3, 256)),
  "zfnet": ((7, 96), (5, 256), (3, 384), (3, 384), (3, 256)),
}
POOL_AFTER = ("conv1", "conv2", "conv5")
LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "output")


def _pool(x):
  return nnx.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding="SAME")


class AlexNet(nnx.Module):
  """AlexNet / ZFNet (`architecture`) for small images, from layer specs."""

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    architecture: str = "alexnet",
    hidden_features: int = 1024,
    dropout: float = 0.5,
    conv_layer=None,
    dense_layer=None,
    layers=None,
    dtype=None,
    rngs: nnx.Rngs,
  ):
    if architecture not in ARCHITECTURES:
      raise ValueError(
        f"architecture={architecture!r} is unknown; choose one of {sorted(ARCHITECTURES)}."
      )
    specs = LayerSpecs(architecture, LAYER_NAMES, conv_layer, dense_layer, layers)
    height, width, channels = image_shape
    for i, (kernel, out_channels) in enumerate(ARCHITECTURES[architecture], 1):
      name = f"conv{i}"
      setattr(
        self,
        name,
        make_conv(
          specs.conv(name), channels, out_channels, kernel, padding="SAME", dtype=dtype, rngs=rngs
        ),
      )
      setattr(self, f"bn{i}", nnx.BatchNorm(out_channels, momentum=0.9, rngs=rngs))
      channels = out_channels
      if name in POOL_AFTER:
        height, width = -(-height // 2), -(-width // 2)
    self.fc6 = make_dense(
      specs.dense("fc6"), height * width * channels, hidden_features, dtype=dtype, rngs=rngs
    )
    self.fc7 = make_dense(
      specs.dense("fc7"), hidden_features, hidden_features, dtype=dtype, rngs=rngs
    )
    self.output = make_dense(specs.output(), hidden_features, num_classes, dtype=dtype, rngs=rngs)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, images):
    x = images
    for i in range(1, 6):
      x = jax.nn.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
      if f"conv{i}" in POOL_AFTER:
        x = _pool(x)
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    x = self.dropout(jax.nn.relu(self.fc6(x)))
    x = self.dropout(jax.nn.relu(self.fc7(x)))
    return self.output(x)
