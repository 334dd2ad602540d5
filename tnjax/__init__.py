"""tnjax: compress neural networks with tensor networks, in JAX/Flax NNX."""

__version__ = "0.1.0"
