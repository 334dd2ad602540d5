"""Examples are tests: the public docstrings' examples (doctest) and README.md's Python
blocks run here, on synthetic data, in a scratch directory holding `configs/`."""

import doctest
import importlib
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# In order: the package's example trains runs/x, which the others read.
DOCTESTED = ("tnjax", "tnjax.compression", "tnjax.compression.serving")


@pytest.fixture
def scratch(tmp_path, monkeypatch):
  os.symlink(os.path.join(REPO, "configs"), tmp_path / "configs")
  monkeypatch.chdir(tmp_path)
  return tmp_path


@pytest.mark.slow  # the package example trains a run
def test_the_public_docstring_examples_run(scratch):
  flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
  for name in DOCTESTED:
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=flags, report=True)
    assert attempted > 0, f"{name} has no example"
    assert failed == 0, f"{failed} of {attempted} examples of {name} failed (see the output)"


def readme_blocks(language: str) -> list[str]:
  text = open(os.path.join(REPO, "README.md")).read()
  blocks = re.findall(r"^( *)```" + language + r"\n(.*?)^\1```", text, flags=re.S | re.M)
  return ["\n".join(line[len(indent) :] for line in body.splitlines()) for indent, body in blocks]


def test_the_readme_has_python_examples():
  assert len(readme_blocks("python")) >= 2


# One test per block (they share nothing), so that the suite's workers run them side by side.
@pytest.mark.slow
@pytest.mark.parametrize("block", readme_blocks("python"), ids=lambda b: b.splitlines()[0][:40])
def test_the_readme_python_block_runs(scratch, block):
  first = block.splitlines()[0]
  if first.startswith("# ") and first.endswith(".py"):  # a file the README asks to write
    path = scratch / first[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block)
    from tnjax.compression.plan_file import read_plan  # pylint: disable=g-import-not-at-top

    plan, _ = read_plan(str(path))
    assert plan, first
  else:
    exec(compile(block, "README.md", "exec"), {})  # pylint: disable=exec-used


def _program_flags(program: str) -> set[str]:
  source = open(os.path.join(REPO, "tnjax", f"{program}.py")).read()
  return set(re.findall(r"flags\.DEFINE_\w+\(\s*\"(\w+)\"", source)) | {"helpfull", "verbosity"}


def readme_commands() -> list[list[str]]:
  """Every `python -m tnjax.PROGRAM ...` command of README.md's bash blocks, as words
  (continuation lines joined, [optional parts] and env assignments dropped)."""
  commands = []
  for block in readme_blocks("bash"):
    for line in block.replace("\\\n", " ").splitlines():
      line = re.sub(r"\[[^\]]*\]", " ", line.split("#")[0])
      words = line.split()
      while words and "=" in words[0] and not words[0].startswith("-"):
        words.pop(0)  # VAR=value before the command
      if words[:2] == ["python", "-m"] and words[2].startswith("tnjax."):
        commands.append(words[2:])
  return commands


@pytest.mark.parametrize("command", readme_commands(), ids=lambda c: " ".join(c)[:60])
def test_every_readme_command_names_real_flags_and_a_config_that_loads(command):
  from tnjax import config_lib  # pylint: disable=g-import-not-at-top

  program, args = command[0].split(".", 1)[1], command[1:]
  known = _program_flags(program)
  args, overrides = config_lib.split_overrides(args)
  values = {}
  for i, arg in enumerate(args):
    if arg.startswith("--"):
      name, _, value = arg[2:].partition("=")
      name = name.removeprefix("no") if name.removeprefix("no") in known else name
      assert name in known, f"{program} has no flag --{name}"
      values[name] = value or (args[i + 1] if i + 1 < len(args) else "")
  if values.get("config", "...") != "..." and program in ("train", "sweep"):  # ...: elided
    config = config_lib.load_config(os.path.join(REPO, values["config"]), overrides)
    assert config.num_epochs >= 1
