"""On-device data augmentation, inside the jitted train step.

`random_crop_flip` is the standard CIFAR augmentation: zero-pad by `padding`
pixels, crop a random window of the original size, flip horizontally with
probability 1/2, independently per example. The trainer derives the key from
(seed, step), so a resumed run draws the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

AUGMENTATIONS = ("", "crop_flip")


def crop_flip(images, offsets, flips, padding: int):
  """Pads (N, H, W, C) images, crops at offsets (N, 2) in [0, 2 padding], flips where flips (N,)."""
  _, height, width, channels = images.shape
  padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))

  def one(image, offset, flip):
    window = jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, channels))
    return jnp.where(flip, window[:, ::-1], window)

  return jax.vmap(one)(padded, offsets, flips)


def random_crop_flip(key, images, padding: int = 4):
  """Random crops (after zero padding) and horizontal flips, per example."""
  offset_key, flip_key = jax.random.split(key)
  offsets = jax.random.randint(offset_key, (images.shape[0], 2), 0, 2 * padding + 1)
  flips = jax.random.bernoulli(flip_key, 0.5, (images.shape[0],))
  return crop_flip(images, offsets, flips, padding)


def augment(name: str, key, images):
  """Applies the augmentation `name` (config.data.augment); '' leaves images as they are."""
  if name == "":
    return images
  if name == "crop_flip":
    return random_crop_flip(key, images)
  raise ValueError(f"config.data.augment={name!r} is unknown; choose one of {AUGMENTATIONS}.")
