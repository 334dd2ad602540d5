"""The built wheel, installed alone (core dependencies only: no TensorFlow, TFDS, wandb,
gcsfs or matplotlib) into a fresh environment, trains, compresses, evaluates and exports
from a directory outside the clone, with configs named as packaged; every feature of a
missing extra ends in one line naming it (network: PyPI, for the core's wheels)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import run_helpers as h

pytestmark = pytest.mark.slow

NOT_IN_CORE = ("tensorflow", "tensorflow_datasets", "wandb", "gcsfs", "matplotlib")


def _uv(*args, timeout=900):
  uv = shutil.which("uv")
  if uv is None:
    pytest.fail("uv is missing: it comes with tnjax's dev extras (pip install -e '.[dev]')")
  env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
  result = subprocess.run([uv, *args], capture_output=True, text=True, timeout=timeout, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def _tracked_copy(destination):
  """The clone's tracked files (what a fresh clone builds from), without its build litter."""
  files = subprocess.run(
    ["git", "ls-files", "-z"], cwd=h.REPO, capture_output=True, check=True
  ).stdout.split(b"\0")
  for name in filter(None, (f.decode() for f in files)):
    source = os.path.join(h.REPO, name)
    target = os.path.join(destination, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(source):
      os.symlink(os.readlink(source), target)
    elif os.path.isfile(source):
      shutil.copy2(source, target)


@pytest.fixture(scope="module")
def core_python(tmp_path_factory):
  root = tmp_path_factory.mktemp("wheel")
  _tracked_copy(root / "src")
  _uv("build", "--wheel", "--out-dir", str(root / "dist"), str(root / "src"))
  (wheel,) = (root / "dist").glob("tnjax-*.whl")
  _uv("venv", "--python", sys.executable, str(root / "venv"))
  python = root / "venv" / "bin" / "python"
  # Under PYTHONDONTWRITEBYTECODE each of the ten runs below would compile jax, flax and
  # orbax from source again (2.7 s each): compile them once here (12 s) instead.
  compile_once = ["--compile-bytecode"] if sys.flags.dont_write_bytecode else []
  _uv("pip", "install", *compile_once, "--python", str(python), str(wheel))
  return python


def _run(python, cwd, *args):
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
  return subprocess.run(
    [str(python), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
  )


def _ok(result):
  assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
  return result.stdout


def _one_line(result, pattern):
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
  assert pattern in lines[0], lines[0]


def test_the_core_wheel_trains_compresses_evaluates_and_exports_anywhere(core_python, tmp_path):
  where = tmp_path / "elsewhere"
  where.mkdir()
  found = _ok(
    _run(
      core_python,
      where,
      "-c",
      "import importlib.util, json, tnjax; print(json.dumps([tnjax.__file__] + "
      f"[importlib.util.find_spec(m) is not None for m in {NOT_IN_CORE!r}]))",
    )
  )
  installed_at, *present = json.loads(found.strip().splitlines()[-1])
  assert "site-packages" in installed_at and not installed_at.startswith(h.REPO)
  assert present == [False] * len(NOT_IN_CORE)

  _ok(
    _run(
      core_python,
      where,
      "-m",
      "tnjax.train",
      "--config",
      "dense_mnist:synthetic,runlocal",
      "--workdir",
      "source",
    )
  )
  (where / "plan.py").write_text(
    'def get_plan(arg=None):\n  return {"hidden": {"kind": "lowrank", "rank": 8}}\n'
  )
  _ok(
    _run(
      core_python,
      where,
      "-m",
      "tnjax.compress",
      "--from",
      "source",
      "--plan",
      "plan.py",
      "--workdir",
      "small",
      "--finetune_epochs",
      "1",
    )
  )
  metrics = json.loads(
    _ok(_run(core_python, where, "-m", "tnjax.evaluate", "--workdir", "small")).splitlines()[-1]
  )
  report = json.loads((where / "small" / "compress.json").read_text())
  assert metrics["test_accuracy"] == pytest.approx(report["finetuned_accuracy"])
  _ok(_run(core_python, where, "-m", "tnjax.export", "--workdir", "small", "--out", "small.bin"))
  served = _ok(
    _run(
      core_python,
      where,
      "-c",
      "import numpy as np, tnjax\n"
      "predict = tnjax.load_predict('small')\n"
      "x = np.zeros([2] + predict.input['shape'], predict.input['dtype'])\n"
      "print(predict(x).shape)",
    )
  )
  assert served.strip().splitlines()[-1] == "(2, 10)"
  assert any(where.joinpath("source").glob("events.out.tfevents.*"))

  # What the core lacks: one line each, naming the extra; nothing written.
  lacking = [
    ("tflite", "tnjax.export --workdir small --out b.bin --tflite small.tflite"),
    ("tfds", "tnjax.train --config tt_mnist:runlocal --workdir tfds_run"),
    (
      "wandb",
      "tnjax.train --config tt_mnist:synthetic,runlocal --workdir wandb_run "
      "--config.wandb.mode=offline",
    ),
    ("gcs", "tnjax.train --config tt_mnist:synthetic,runlocal --workdir gs://bucket/run"),
  ]
  for extra, command in lacking:
    _one_line(_run(core_python, where, "-m", *command.split()), f"pip install 'tnjax[{extra}]'")
  assert not any((where / name).exists() for name in ("b.bin", "small.tflite", "tfds_run"))
  assert not (where / "wandb_run").exists()
