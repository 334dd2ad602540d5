"""Novikov et al.'s CIFAR-10 networks: a small CNN with a TT fully-connected part,
and the wide-and-shallow TT net.

`NovikovCNN` is the convolutional part of Caffe's CIFAR-10 Quick net (Novikov et
al. section 6.2): conv 5x5 -> 32, max pool 3/2, ReLU; conv 5x5 -> 32, ReLU, avg
pool 3/2; conv 5x5 -> 64, ReLU, avg pool 3/2 (1,024 features); then the
fully-connected part fc1 -> [ReLU] -> output. The paper's dense baseline is
Quick's own 1,024 -> 64 -> 10 (no ReLU between, `hidden_relu=False`); its TT
version is a 1,024 x 3,125 TT-layer (modes 4^5 -> 5^5, rank 8) -> ReLU -> 10.

`WideTTNet` (Novikov's code): 3072 -> TT (4,4,4,4,4,3 -> 8^6 = 262,144 units,
rank 3, no bias) -> BatchNorm -> ReLU -> dropout 0.4 -> TT (8^6 -> 4^6 = 4,096, rank 3) ->
BatchNorm -> ReLU -> dropout 0.4 -> FC 10. As dense layers the two hidden layers
would hold 1.88e9 weights.
"""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.models.layer_specs import LayerSpecs
from tnjax.nn import make_conv, make_dense

TT8 = {"kind": "tt", "ranks": 8}  # NovikovCNN's default fully-connected layer
# No biases: each TT layer feeds a BatchNorm, whose shift does a bias's job.
WIDE_HIDDEN = {
  "kind": "tt",
  "ranks": 3,
  "in_shape": (4, 4, 4, 4, 4, 3),
  "out_shape": (8,) * 6,
  "use_bias": False,
}
WIDE_SECOND = {
  "kind": "tt",
  "ranks": 3,
  "in_shape": (8,) * 6,
  "out_shape": (4,) * 6,
  "use_bias": False,
}


class NovikovCNN(nnx.Module):
  """Three conv layers and a (TT) fully-connected part for 32x32x3 images."""

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    hidden_features: int = 1024,
    hidden_relu: bool = True,
    conv_layer=None,
    dense_layer=None,
    layers=None,
    dtype=None,
    rngs: nnx.Rngs,
  ):
    names, dense_layer = ("conv1", "conv2", "conv3", "fc1", "output"), dense_layer or TT8
    specs = LayerSpecs("novikov_cnn", names, conv_layer, dense_layer, layers)
    height, width, channels = image_shape
    self.conv1 = make_conv(
      specs.conv("conv1"), channels, 32, 5, padding="SAME", dtype=dtype, rngs=rngs
    )
    self.conv2 = make_conv(specs.conv("conv2"), 32, 32, 5, padding="SAME", dtype=dtype, rngs=rngs)
    self.conv3 = make_conv(specs.conv("conv3"), 32, 64, 5, padding="SAME", dtype=dtype, rngs=rngs)
    for _ in range(3):
      height, width = -(-height // 2), -(-width // 2)
    self.fc1 = make_dense(
      specs.dense("fc1"), height * width * 64, hidden_features, dtype=dtype, rngs=rngs
    )
    self.output = make_dense(specs.output(), hidden_features, num_classes, dtype=dtype, rngs=rngs)
    self.hidden_relu = hidden_relu

  def __call__(self, images):
    pool = dict(window_shape=(3, 3), strides=(2, 2), padding="SAME")
    x = jax.nn.relu(nnx.max_pool(self.conv1(images), **pool))
    x = nnx.avg_pool(jax.nn.relu(self.conv2(x)), **pool)
    x = nnx.avg_pool(jax.nn.relu(self.conv3(x)), **pool)
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    hidden = self.fc1(x)
    return self.output(jax.nn.relu(hidden) if self.hidden_relu else hidden)


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
    dtype=None,
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
    self.fc1 = make_dense(
      specs.dense("fc1"), math.prod(image_shape), hidden_features, dtype=dtype, rngs=rngs
    )
    self.bn1 = nnx.BatchNorm(hidden_features, momentum=0.9, rngs=rngs)
    self.fc2 = make_dense(
      specs.dense("fc2"), hidden_features, second_features, dtype=dtype, rngs=rngs
    )
    self.bn2 = nnx.BatchNorm(second_features, momentum=0.9, rngs=rngs)
    self.output = make_dense(specs.output(), second_features, num_classes, dtype=dtype, rngs=rngs)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, images):
    x = images.reshape(images.shape[0], -1)
    x = self.dropout(jax.nn.relu(self.bn1(self.fc1(x))))
    x = self.dropout(jax.nn.relu(self.bn2(self.fc2(x))))
    return self.output(x)
