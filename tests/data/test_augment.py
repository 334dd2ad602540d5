"""On-device augmentation: exact crops and flips, determinism, training with it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tnjax.data import augment


def test_crop_is_a_shifted_window_of_the_zero_padded_image_and_flip_reverses_width():
  image = jnp.arange(2 * 5 * 6 * 3, dtype=jnp.float32).reshape(2, 5, 6, 3) + 1
  offsets = jnp.array([[0, 8], [4, 4]])
  out = np.asarray(augment.crop_flip(image, offsets, jnp.array([False, True]), padding=4))
  padded = np.pad(np.asarray(image), ((0, 0), (4, 4), (4, 4), (0, 0)))
  np.testing.assert_array_equal(out[0], padded[0, 0:5, 8:14])
  np.testing.assert_array_equal(out[1], np.asarray(image)[1, :, ::-1])  # centred window, flipped
  assert (out[0][:4] == 0).all() and (out[0][:, 2:] == 0).all()  # shifted in zeros


def test_random_crop_flip_is_deterministic_per_key_and_varies_per_example():
  images = jax.random.normal(jax.random.key(0), (64, 8, 8, 3))
  a = augment.random_crop_flip(jax.random.key(1), images)
  np.testing.assert_array_equal(a, augment.random_crop_flip(jax.random.key(1), images))
  assert not np.array_equal(a, augment.random_crop_flip(jax.random.key(2), images))
  same = jnp.broadcast_to(images[:1], images.shape)  # one image, 64 draws
  outputs = np.asarray(augment.random_crop_flip(jax.random.key(3), same)).reshape(64, -1)
  assert len({row.tobytes() for row in outputs}) > 32  # 81 crops x 2 flips to choose from
  with pytest.raises(ValueError, match="config.data.augment='cutout' is unknown"):
    augment.augment("cutout", jax.random.key(0), images)
