"""Test settings: no wandb, quiet TF, a shared XLA compilation cache, and float64 on demand."""

import contextlib
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
# Every program, however quick to compile: a trainer subprocess compiles some 35 small
# ones (~0.1 s each); caching them all takes a small CLI run from 10 s to 6 s. From a
# fresh clone with an empty cache the suite took 587 s this way and 631 s at 0.2 s.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# The suite compiles hundreds of small programs and runs each a few steps: XLA:CPU's backend
# at -O1 compiles them faster and still runs the larger ones (VGG) well. Smoke runs, VGG
# training and Keras VGG tests on 2 cores, cold cache: 135 s at the default -O3, 108 s at
# -O1, 130 s at -O0. Tests check values, never speed; benchmarks run outside pytest.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1"
  ).strip()

import subprocess  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

from tnjax import fileio  # noqa: E402

# The suite's in-process runs are programs too: gs:// through gcsfs, listings fresh.
fileio.configure_for_programs()


def directional_derivatives(loss, params, seed: int = 3, h: float = 1e-6):
  """(analytic, numeric) derivative of `loss` at the pytree `params` along one random
  direction: jax.grad against a central finite difference (float64 tests)."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  leaves, treedef = jax.tree.flatten(params)
  rng = np.random.default_rng(seed)
  direction = jax.tree.unflatten(treedef, [rng.normal(size=leaf.shape) for leaf in leaves])
  grads = jax.grad(loss)(params)
  analytic = sum(
    float((g * d).sum()) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction))
  )
  shifted = lambda s: jax.tree.map(lambda p, d: p + s * h * d, params, direction)  # noqa: E731
  return analytic, float((loss(shifted(1.0)) - loss(shifted(-1.0))) / (2 * h))


@pytest.fixture
def finite_differences():
  """directional_derivatives, for the gradient tests of every layer family."""
  return directional_derivatives


@pytest.fixture
def x64():
  """Runs a test with float64 enabled, restoring the previous setting after."""
  previous = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", previous)


# Fault trials: a small tmpfs to fill up, and a read-only one, where the tests run as root.
@contextlib.contextmanager
def _tmpfs(mount_point, options: str):
  mounted = subprocess.run(
    ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True
  )
  if mounted.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
  try:
    yield mount_point
  finally:
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
  """A directory on a tmpfs of 600 kB (full after a few files); skipped where one cannot be
  mounted (not root, or no mount permission in this container)."""
  mount_point = tmp_path / "small_disk"
  mount_point.mkdir()
  if os.geteuid() != 0:
    pytest.skip("mounting a tmpfs needs root")
  with _tmpfs(mount_point, "size=600k") as path:
    yield path


@pytest.fixture
def read_only_dir(tmp_path):
  """A read-only directory: a read-only tmpfs as root (root ignores file permissions)."""
  mount_point = tmp_path / "read_only"
  mount_point.mkdir()
  if os.geteuid() != 0:
    os.chmod(mount_point, 0o500)
    yield mount_point
    os.chmod(mount_point, 0o700)
    return
  with _tmpfs(mount_point, "size=64k,ro") as path:
    yield path
