"""2x2 max pooling (stride 2, VALID) for the zoo's CNNs, written so its gradient is cheap.

`nnx.max_pool` lowers to XLA's reduce-window, whose gradient is a select-and-scatter,
slow on a CPU. Here the pooling is a reshape to (N, H/2, 2, W/2, 2, C) and a max over
the two window axes, whose gradient is a compare and a broadcast. Same outputs, and
the same gradient except at exact ties inside a window, which it shares among the
tied inputs instead of giving all of it to the first. Ties happen where a window's
inputs are equal: zeros after a ReLU (whose gradient the ReLU stops either way), a
conv over blank background (the tied positions see the same input patch, so a
kernel's gradient sums the same), and, more often, in bfloat16 compute
(`dtype='bfloat16'`), whose 8-bit mantissa rounds near values together.
`python -m benchmarks.pooling` times both in the zoo's training steps
(benchmarks/results/pooling_cpu.md).
"""

from __future__ import annotations

import jax


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """Max over non-overlapping 2x2 windows of NHWC `x`; an odd last row or column is dropped,
  as nnx.max_pool(x, (2, 2), strides=(2, 2)) does."""
  n, h, w, c = x.shape
  x = x[:, : h - h % 2, : w - w % 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
