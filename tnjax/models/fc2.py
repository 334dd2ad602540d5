"""FC-2: Novikov et al.'s MNIST network, first layer swappable (dense | tt | lowrank | ...)."""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.nn import make_dense


class FC2(nnx.Module):
  """flatten -> hidden layer (any dense-family spec) -> ReLU -> dense classifier.

  With 32x32 inputs and hidden=1024 the first layer is the paper's 1024x1024
  TT-layer (or its dense / matrix-rank baselines).
  """

  def __init__(self, image_shape, num_classes: int, *, hidden_features: int = 1024,
               hidden_layer=None, output_layer=None, rngs: nnx.Rngs):
    in_features = math.prod(image_shape)
    self.hidden = make_dense(hidden_layer or {"kind": "dense"}, in_features, hidden_features,
                             rngs=rngs)
    self.output = make_dense(output_layer or {"kind": "dense"}, hidden_features, num_classes,
                             rngs=rngs)

  def __call__(self, images):
    x = images.reshape(images.shape[0], -1)
    return self.output(jax.nn.relu(self.hidden(x)))
