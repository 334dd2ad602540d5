"""Synthetic images for tests and smoke runs: no download, any shape."""

from __future__ import annotations

import numpy as np


def make_synthetic(config):
  """Class prototypes plus noise: deterministic, learnable, any image shape."""
  s = config.synthetic
  shape = tuple(int(d) for d in s.image_shape)
  rng = np.random.default_rng(s.seed)
  prototypes = rng.uniform(0, 255, size=(s.num_classes,) + shape)
  splits = {}
  for split, n in (("train", s.num_train), ("test", s.num_test)):
    labels = rng.integers(0, s.num_classes, size=n).astype(np.int32)
    noisy = prototypes[labels] + rng.normal(0, 60.0, size=(n,) + shape)
    splits[split] = (np.clip(noisy, 0, 255).astype(np.uint8), labels)
  return splits, int(s.num_classes)
