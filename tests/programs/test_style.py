"""The house style, checked with the suite: ruff lint and ruff format (pyproject.toml)."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_finds_nothing_to_fix(command):
  ruff = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")
  assert ruff, "ruff is missing: pip install -e '.[dev]'"
  run = subprocess.run([ruff, *command, "."], cwd=REPO, capture_output=True, text=True)
  assert run.returncode == 0, (
    f"ruff {' '.join(command)} . (fix: ruff check --fix . && ruff "
    f"format .):\n{run.stdout[-3000:]}{run.stderr[-1000:]}"
  )
