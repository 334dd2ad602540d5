"""Preprocessing of uint8 images, fitted on the train split: scaling (a byte lookup, so
serving replays it bit for bit), padding, GCN and ZCA whitening."""

from __future__ import annotations

import numpy as np


def scale_table(how: str, fitted: dict, channels: int) -> np.ndarray:
  """(256, channels) float32: the scaled value of each byte in each channel. Scaling is a
  lookup, so a served model (eval_pipeline.apply) gets bit for bit the trainer's inputs."""
  x = np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0)
  x = np.repeat(x, channels, axis=1)
  if how == "symmetric":
    x = np.float32(2.0) * x - np.float32(1.0)
  elif how == "standardize":
    x = (x - fitted["scale_mean"]) / fitted["scale_std"]
  return x.astype(np.float32)


def scale(images: np.ndarray, how: str, fitted: dict) -> np.ndarray:
  channels = images.shape[-1]
  return scale_table(how, fitted, channels)[images, np.arange(channels)]


def fit_scale(how: str, train_images: np.ndarray) -> dict:
  """standardize's per-channel statistics of the train split (nothing to fit otherwise)."""
  if how != "standardize":
    return {}
  reference = train_images.astype(np.float32) / 255.0
  return {
    "scale_mean": reference.mean(axis=(0, 1, 2)),
    "scale_std": reference.std(axis=(0, 1, 2)) + np.float32(1e-8),
  }


WHITENINGS = ("", "gcn_zca")


def global_contrast_normalize(images: np.ndarray, scale: float = 55.0) -> np.ndarray:
  """Each image minus its mean, scaled to norm `scale` (pylearn2's CIFAR-10 setting)."""
  flat = images.reshape(len(images), -1).astype(np.float64)
  flat = flat - flat.mean(axis=1, keepdims=True)
  norms = np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-8)
  return (scale * flat / norms).reshape(images.shape).astype(np.float32)


def zca_fit(train_images: np.ndarray, bias: float = 0.1) -> dict:
  """ZCA whitening of the flattened train images: {'zca_mean', 'zca_matrix'}.

  W = V diag(1 / sqrt(eigenvalues + bias)) V^T of the train covariance; `bias`
  keeps the near-zero directions from being amplified (pylearn2's filter_bias).
  """
  flat = train_images.reshape(len(train_images), -1).astype(np.float64)
  mean = flat.mean(axis=0)
  centered = flat - mean
  eigenvalues, vectors = np.linalg.eigh(centered.T @ centered / len(flat))
  matrix = (vectors / np.sqrt(np.maximum(eigenvalues, 0.0) + bias)) @ vectors.T
  return {"zca_mean": mean.astype(np.float32), "zca_matrix": matrix.astype(np.float32)}


def zca_apply(images: np.ndarray, zca: dict) -> np.ndarray:
  flat = images.reshape(len(images), -1) - zca["zca_mean"]
  return (flat @ zca["zca_matrix"]).reshape(images.shape).astype(np.float32)


def pad(images: np.ndarray, size: int) -> np.ndarray:
  h, w = images.shape[1:3]
  if size < max(h, w):
    raise ValueError(
      f"data.pad_to={size} is smaller than the {h}x{w} images; use 0 or >= {max(h, w)}."
    )
  top, left = (size - h) // 2, (size - w) // 2
  return np.pad(images, ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0)))
