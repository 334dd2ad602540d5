"""tnjax resolves, wheels and all, on every platform and Python that README claims
(network: PyPI).

pip cannot resolve for another platform without building sdists; uv resolves from
the index's metadata for a target platform and refuses a package that has no wheel
for it (the check that found tensorflow-cpu missing on macOS and Linux aarch64).
Newer Pythons must keep the newest JAX there instead of a downgrade (and a downgraded
CUDA / TPU plugin) to what Python 3.11 gets.
"""

import concurrent.futures
import os
import re
import shutil
import subprocess

import pytest

import run_helpers as h

pytestmark = pytest.mark.slow

PLATFORMS = ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "aarch64-apple-darwin")
PYTHONS = ("3.11", "3.12", "3.13")
# Compiled packages whose sdist would only fail to build: a wheel or nothing.
WHEELS_ONLY = ("jaxlib", "tensorflow", "tensorflow-cpu", "h5py", "numpy")


def _resolve(platform: str, python_version: str, extra: str | None) -> dict:
  uv = shutil.which("uv")
  if uv is None:
    pytest.fail("uv is missing: it comes with tnjax's dev extras (pip install -e '.[dev]')")
  command = [uv, "pip", "compile", "--no-header", "--quiet"]
  command += ["--python-platform", platform, "--python-version", python_version]
  for package in WHEELS_ONLY:
    command += ["--only-binary", package]
  command += ["--extra", extra] if extra else []
  command.append(os.path.join(h.REPO, "pyproject.toml"))
  # Resolving needs no interpreter of that version; without this uv tries to download one.
  env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
  result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
  if result.returncode != 0:
    return {"error": result.stderr[-1500:]}
  return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", result.stdout, re.M))


def _version(text: str) -> tuple:
  return tuple(int(p) for p in re.findall(r"\d+", text)[:2])


@pytest.fixture(scope="module")
def resolutions():
  """{(platform, python, extra): pins} for every claimed combination, resolved at once."""
  keys = [(p, v, e) for p in PLATFORMS for v in PYTHONS for e in (None, "all")]
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    return dict(zip(keys, pool.map(lambda key: _resolve(*key), keys)))


def test_core_and_all_resolve_on_every_claimed_platform_and_python(resolutions):
  failed = {key: pins["error"] for key, pins in resolutions.items() if "error" in pins}
  assert not failed, "\n".join(f"{key}:\n{error}" for key, error in failed.items())
  for (platform, python_version, extra), pins in resolutions.items():
    assert pins["jaxlib"] == pins["jax"], (platform, python_version)
    assert {"flax", "optax", "orbax-checkpoint", "tensorboardx"} <= set(pins), pins
    if python_version == "3.11":
      assert _version(pins["jax"]) == (0, 10), (platform, pins["jax"])
    else:
      assert _version(pins["jax"]) >= (0, 11), (platform, python_version, pins["jax"])


def test_the_core_pulls_in_no_tensorflow_and_all_gets_the_platforms_own_build(resolutions):
  for (platform, python_version, extra), pins in resolutions.items():
    tensorflow = {name for name in pins if name.startswith("tensorflow") or name == "wandb"}
    if extra is None:
      assert not tensorflow, (platform, python_version, sorted(tensorflow))
      assert "gcsfs" not in pins and "matplotlib" not in pins
    elif platform.startswith("x86_64"):
      assert "tensorflow-cpu" in pins and "tensorflow" not in pins, platform
    else:  # no tensorflow-cpu wheels there: the tensorflow wheel is the CPU build
      assert "tensorflow" in pins and "tensorflow-cpu" not in pins, platform
