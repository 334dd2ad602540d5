"""The declared dependency ranges resolve to current JAX on newer Pythons (network: PyPI).

pip's own `install --dry-run --python-version X --only-binary=:all:` cannot resolve
tnjax for any Python: tensorflow-datasets needs `promise`, which PyPI has only as
an sdist. uv resolves for another Python from metadata alone, so it checks the
same thing: installing tnjax on Python 3.12 / 3.13 keeps the newest JAX there
instead of downgrading it (and its CUDA/TPU plugin) to what Python 3.11 gets.
"""

import os
import re
import shutil
import subprocess

import pytest

import run_helpers as h

pytestmark = pytest.mark.slow


def _resolve(python_version: str) -> dict:
  uv = shutil.which("uv")
  if uv is None:
    pytest.fail("uv is missing: it comes with tnjax's dev extras (pip install -e '.[dev]')")
  result = subprocess.run(
    [
      uv,
      "pip",
      "compile",
      "--python-version",
      python_version,
      "--no-header",
      "--quiet",
      os.path.join(h.REPO, "pyproject.toml"),
    ],
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", result.stdout, re.M))


def _version(text: str) -> tuple:
  return tuple(int(p) for p in re.findall(r"\d+", text)[:2])


@pytest.mark.parametrize("python_version", ["3.12", "3.13"])
def test_newer_pythons_get_jax_0_11_or_newer(python_version):
  pins = _resolve(python_version)
  assert _version(pins["jax"]) >= (0, 11), pins["jax"]
  assert pins["jaxlib"] == pins["jax"]
  assert "flax" in pins and "orbax-checkpoint" in pins


def test_python_3_11_still_resolves_to_jax_0_10():
  assert _version(_resolve("3.11")["jax"]) == (0, 10)
