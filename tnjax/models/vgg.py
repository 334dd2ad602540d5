"""VGG-16 / VGG-19 (Simonyan & Zisserman 2015), every conv and FC layer swappable.

Two variants:
  * 'imagenet': 224x224 inputs, FC6 25088x4096, FC7 4096x4096, FC8 4096xclasses,
    dropout 0.5 after FC6 and FC7, no BatchNorm (the original; Novikov et al.'s
    TT experiments replace FC6 / FC7). Dense VGG-16: 138,357,544 parameters.
  * 'cifar': 32x32 inputs, BatchNorm after every conv, and a 512 -> 512 -> 512 ->
    classes head with dropout 0.5 (the common CIFAR VGG, whose two hidden FC layers
    are what the ADTN paper's CIFAR experiments compress; `hidden_features=4096`
    gives the ImageNet-width head, ~1.9e7 FC weights, the size the paper quotes).

Layer names: conv1_1 ... conv5_3 (conv5_4 for VGG-19), fc6, fc7, output.
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.models.layer_specs import LayerSpecs
from tnjax.models.pooling import max_pool_2x2
from tnjax.nn import make_conv, make_dense

BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
HEADS = {"imagenet": 4096, "cifar": 512}


def conv_names(depth: int) -> list[str]:
  return [f"conv{b + 1}_{i + 1}" for b, n in enumerate(BLOCKS[depth]) for i in range(n)]


class VGG(nnx.Module):
  """VGG-`depth` ('imagenet' or 'cifar' variant) from layer specs."""

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    depth: int = 16,
    variant: str = "imagenet",
    conv_layer=None,
    dense_layer=None,
    layers=None,
    dropout: float = 0.5,
    hidden_features: int | None = None,
    dtype=None,
    rngs: nnx.Rngs,
  ):
    if depth not in BLOCKS:
      raise ValueError(f"VGG depth={depth} is unknown; choose one of {sorted(BLOCKS)}.")
    if variant not in HEADS:
      raise ValueError(f"VGG variant={variant!r} is unknown; choose one of {sorted(HEADS)}.")
    names = conv_names(depth)
    all_names = names + ["fc6", "fc7", "output"]
    specs = LayerSpecs(f"vgg{depth}", all_names, conv_layer, dense_layer, layers)
    height, width, channels = image_shape
    self.block_sizes, self.conv_names = BLOCKS[depth], tuple(names)
    self.batch_norm = variant == "cifar"
    index = 0
    for size, out_channels in zip(self.block_sizes, WIDTHS):
      for _ in range(size):
        name = names[index]  # attributes named like the layers, so tables and overrides agree
        setattr(
          self,
          name,
          make_conv(
            specs.conv(name), channels, out_channels, 3, padding="SAME", dtype=dtype, rngs=rngs
          ),
        )
        if self.batch_norm:
          setattr(self, f"bn{name[4:]}", nnx.BatchNorm(out_channels, momentum=0.9, rngs=rngs))
        channels, index = out_channels, index + 1
      height, width = height // 2, width // 2
    if min(height, width) < 1:
      raise ValueError(f"Images {image_shape} are too small for VGG (need at least 32x32).")
    hidden = hidden_features or HEADS[variant]
    self.fc6 = make_dense(
      specs.dense("fc6"), height * width * channels, hidden, dtype=dtype, rngs=rngs
    )
    self.fc7 = make_dense(specs.dense("fc7"), hidden, hidden, dtype=dtype, rngs=rngs)
    self.output = make_dense(specs.output(), hidden, num_classes, dtype=dtype, rngs=rngs)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)

  def features(self, images):
    """The convolutional part: the last pooled feature map, (N, H / 32, W / 32, 512)."""
    x, index = images, 0
    for size in self.block_sizes:
      for _ in range(size):
        name = self.conv_names[index]
        x = getattr(self, name)(x)
        if self.batch_norm:
          x = getattr(self, f"bn{name[4:]}")(x)
        x, index = jax.nn.relu(x), index + 1
      x = max_pool_2x2(x)
    return x

  def __call__(self, images):
    x = self.features(images)
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (H, W, C) order, as Keras flattens
    x = self.dropout(jax.nn.relu(self.fc6(x)))
    x = self.dropout(jax.nn.relu(self.fc7(x)))
    return self.output(x)
