"""Two models written the way flax's own examples write them: plain nnx layers, no tnjax.

`CNN` is flax's examples/mnist CNN with BatchNorm and Dropout; `ViT` a small vision
transformer (4x4 patches, 4 blocks) whose attention projections are nnx.LinearGeneral.
tnjax.compress finds their layers by path: CNN conv1, conv2, linear1, linear2; ViT
patch, blocks/<i>/{query, key, value, out, mlp_in, mlp_out}, head.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class CNN(nnx.Module):
  def __init__(self, *, rngs: nnx.Rngs, num_classes: int = 10):
    self.conv1 = nnx.Conv(1, 32, (3, 3), rngs=rngs)
    self.bn1 = nnx.BatchNorm(32, rngs=rngs)
    self.conv2 = nnx.Conv(32, 64, (3, 3), rngs=rngs)
    self.bn2 = nnx.BatchNorm(64, rngs=rngs)
    self.linear1 = nnx.Linear(7 * 7 * 64, 256, rngs=rngs)
    self.dropout = nnx.Dropout(0.3, rngs=rngs)
    self.linear2 = nnx.Linear(256, num_classes, rngs=rngs)

  def __call__(self, x):
    x = nnx.avg_pool(nnx.relu(self.bn1(self.conv1(x))), (2, 2), (2, 2))
    x = nnx.avg_pool(nnx.relu(self.bn2(self.conv2(x))), (2, 2), (2, 2))
    x = x.reshape(x.shape[0], -1)
    return self.linear2(self.dropout(nnx.relu(self.linear1(x))))


class Block(nnx.Module):
  def __init__(self, dim: int, heads: int, mlp_dim: int, *, rngs: nnx.Rngs):
    head_dim = dim // heads
    self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
    self.query = nnx.LinearGeneral(dim, (heads, head_dim), rngs=rngs)
    self.key = nnx.LinearGeneral(dim, (heads, head_dim), rngs=rngs)
    self.value = nnx.LinearGeneral(dim, (heads, head_dim), rngs=rngs)
    self.out = nnx.LinearGeneral((heads, head_dim), dim, axis=(-2, -1), rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
    self.mlp_in = nnx.Linear(dim, mlp_dim, rngs=rngs)
    self.mlp_out = nnx.Linear(mlp_dim, dim, rngs=rngs)

  def __call__(self, x):
    h = self.norm1(x)
    q, k, v = self.query(h), self.key(h), self.value(h)  # (b, t, heads, head_dim)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
    attended = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
    x = x + self.out(attended)
    return x + self.mlp_out(nnx.gelu(self.mlp_in(self.norm2(x))))


class ViT(nnx.Module):
  def __init__(
    self,
    *,
    rngs: nnx.Rngs,
    num_classes: int = 10,
    patch: int = 4,
    dim: int = 64,
    depth: int = 4,
    heads: int = 4,
    mlp_dim: int = 256,
    image_size: int = 28,
  ):
    self.patch_size = patch
    tokens = (image_size // patch) ** 2
    self.patch = nnx.Linear(patch * patch, dim, rngs=rngs)
    self.position = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1, tokens, dim)))
    self.blocks = nnx.List([Block(dim, heads, mlp_dim, rngs=rngs) for _ in range(depth)])
    self.norm = nnx.LayerNorm(dim, rngs=rngs)
    self.head = nnx.Linear(dim, num_classes, rngs=rngs)

  def __call__(self, x):
    b, h, w, c = x.shape
    p = self.patch_size
    x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    x = self.patch(x.reshape(b, (h // p) * (w // p), p * p * c)) + self.position[...]
    for block in self.blocks:
      x = block(x)
    return self.head(self.norm(x).mean(axis=1))


# What each study compresses: the layers where the weights are (the tiny first conv, the
# patch embedding and the heads stay dense).
PLANNED = {
  "cnn": ("conv2", "linear1"),
  "vit": tuple(
    f"blocks/{i}/{name}"
    for i in range(4)
    for name in ("query", "key", "value", "out", "mlp_in", "mlp_out")
  ),
}
MODELS = {"cnn": CNN, "vit": ViT}
