"""Test settings: no wandb, quiet TF, a shared XLA compilation cache, and float64 on demand."""

import getpass
import os
import tempfile

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Many tests (and the CLI runs they start) compile the same small training steps;
# XLA's CPU compiles take seconds, so every process of the suite shares JAX's
# persistent cache (keyed by the program, jax version and device: never stale). Set
# through the environment, so the subprocesses the tests start inherit it.
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR",
  os.path.join(tempfile.gettempdir(), f"tnjax-tests-xla-cache-{getpass.getuser()}"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def x64():
  """Runs a test with float64 enabled, restoring the previous setting after."""
  previous = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", previous)
