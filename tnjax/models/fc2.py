"""FC-2: Novikov et al.'s MNIST network, first layer swappable (dense | tt | lowrank | ...)."""

from __future__ import annotations

import math

import jax
from flax import nnx

from tnjax.models.layer_specs import LayerSpecs
from tnjax.nn import make_dense

LAYER_NAMES = ("hidden", "output")


class FC2(nnx.Module):
  """flatten -> hidden layer -> ReLU -> classifier ('output', dense unless `layers` names it).

  With 32x32 inputs and hidden=1024 the first layer is the paper's 1024x1024
  TT-layer (`layers={'hidden': {'kind': 'tt', ...}}`) or its dense / matrix-rank
  baselines. `dense_layer` is the default of the hidden layer.
  """

  def __init__(
    self,
    image_shape,
    num_classes: int,
    *,
    hidden_features: int = 1024,
    conv_layer=None,
    dense_layer=None,
    layers=None,
    dtype=None,
    rngs: nnx.Rngs,
  ):
    specs = LayerSpecs("fc2", LAYER_NAMES, conv_layer, dense_layer, layers)
    in_features = math.prod(image_shape)
    self.hidden = make_dense(
      specs.dense("hidden"), in_features, hidden_features, dtype=dtype, rngs=rngs
    )
    self.output = make_dense(specs.output(), hidden_features, num_classes, dtype=dtype, rngs=rngs)

  def __call__(self, images):
    x = images.reshape(images.shape[0], -1)
    return self.output(jax.nn.relu(self.hidden(x)))
