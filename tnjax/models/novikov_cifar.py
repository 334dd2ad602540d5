"""Novikov et al.'s CIFAR-10 networks: a small CNN with a TT fully-connected part,
and the wide-and-shallow TT net.

`NovikovCNN` follows the MatConvNet CIFAR-10 example net PAPERS.md points to:
conv 5x5 -> 32, max pool 3/2, ReLU; conv 5x5 -> 32, ReLU, avg pool 3/2; conv 5x5
-> 64, ReLU, avg pool 3/2; then the fully-connected part fc1 (1,024 -> 1,024, the
layer made TT, 4x8x8x4 modes by default) -> ReLU -> output. The example's own FC
part is 1,024 -> 64 -> 10; a 1,024-wide fc1 gives the TT-layer something to
compress (the paper's exact sizes were not retrieved).

`WideTTNet` (Novikov's code): 3072 -> TT (4,4,4,4,4,3 -> 8^6 = 262,144 units,
rank 3) -> BatchNorm -> ReLU -> dropout 0.4 -> TT (8^6 -> 4^6 = 4,096, rank 3) ->
BatchNorm -> ReLU -> dropout 0.4 -> FC 10. As dense layers the two hidden layers
would hold 1.88e9 weights.
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.models.layer_specs import LayerSpecs
from tnjax.nn import make_conv, make_dense

WIDE_HIDDEN = {"kind": "tt", "ranks": 3, "in_shape": (4, 4, 4, 4, 4, 3), "out_shape": (8,) * 6}
WIDE_SECOND = {"kind": "tt", "ranks": 3, "in_shape": (8,) * 6, "out_shape": (4,) * 6}


class NovikovCNN(nnx.Module):
  """Three conv layers and a (TT) fully-connected part for 32x32x3 images."""

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    hidden_features: int = 1024,
    conv_layer=None,
    dense_layer=None,
    layers=None,
    rngs: nnx.Rngs,
  ):
    specs = LayerSpecs(
      "novikov_cnn",
      ("conv1", "conv2", "conv3", "fc1", "output"),
      conv_layer=conv_layer,
      dense_layer=dense_layer or {"kind": "tt", "ranks": 8},
      layers=layers,
    )
    height, width, channels = image_shape
    self.conv1 = make_conv(specs.conv("conv1"), channels, 32, 5, padding="SAME", rngs=rngs)
    self.conv2 = make_conv(specs.conv("conv2"), 32, 32, 5, padding="SAME", rngs=rngs)
    self.conv3 = make_conv(specs.conv("conv3"), 32, 64, 5, padding="SAME", rngs=rngs)
    for _ in range(3):
      height, width = -(-height // 2), -(-width // 2)
    self.fc1 = make_dense(specs.dense("fc1"), height * width * 64, hidden_features, rngs=rngs)
    self.output = make_dense(specs.output(), hidden_features, num_classes, rngs=rngs)

  def __call__(self, images):
    pool = dict(window_shape=(3, 3), strides=(2, 2), padding="SAME")
    x = jax.nn.relu(nnx.max_pool(self.conv1(images), **pool))
    x = nnx.avg_pool(jax.nn.relu(self.conv2(x)), **pool)
    x = nnx.avg_pool(jax.nn.relu(self.conv3(x)), **pool)
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    return self.output(jax.nn.relu(self.fc1(x)))


class WideTTNet(nnx.Module):
  """3072 -> 262,144 -> 4,096 -> classes with TT hidden layers, BatchNorm and dropout."""

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    hidden_features: int = 8**6,
    second_features: int = 4**6,
    dropout: float = 0.4,
    dense_layer=None,
    layers=None,
    rngs: nnx.Rngs,
  ):
    specs = LayerSpecs(
      "wide_tt",
      ("fc1", "fc2", "output"),
      dense_layer=dense_layer,
      layers={"fc1": WIDE_HIDDEN, "fc2": WIDE_SECOND, **dict(layers or {})}
      if dense_layer is None
      else layers,
    )
    self.fc1 = make_dense(specs.dense("fc1"), math.prod(image_shape), hidden_features, rngs=rngs)
    self.bn1 = nnx.BatchNorm(hidden_features, momentum=0.9, rngs=rngs)
    self.fc2 = make_dense(specs.dense("fc2"), hidden_features, second_features, rngs=rngs)
    self.bn2 = nnx.BatchNorm(second_features, momentum=0.9, rngs=rngs)
    self.output = make_dense(specs.output(), second_features, num_classes, rngs=rngs)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, images):
    x = images.reshape(images.shape[0], -1)
    x = self.dropout(jax.nn.relu(self.bn1(self.fc1(x))))
    x = self.dropout(jax.nn.relu(self.bn2(self.fc2(x))))
    return self.output(x)
