"""Runs many command lines of one tnjax program in this one process (the fault suite's
driver: a JAX import per case would cost seconds each).

stdin: {"program": "compress", "watch": [dirs], "cases": [[arg, ...], ...]}
stdout (last line): JSON, per case {"code", "stderr", "stdout", "changed": [files]}.
"""

import contextlib
import hashlib
import importlib
import io
import json
import os
import sys
import traceback

from absl import flags

from tnjax import config_lib, programs

IGNORED = (".lock",)  # the run lock: rewritten by every trainer that takes it


def _hashes(dirs) -> dict:
  out = {}
  for top in dirs:
    for root, _, files in os.walk(top):
      for name in files:
        if name not in IGNORED:
          path = os.path.join(root, name)
          with open(path, "rb") as f:
            out[path] = hashlib.sha256(f.read()).hexdigest()
  return out


_DEFINED = set()


def _run(program, args) -> dict:
  module = importlib.import_module(f"tnjax.{program}")
  if hasattr(module, "define_flags") and program not in _DEFINED:  # train: only as a program
    module.define_flags()
    _DEFINED.add(program)
  flags.FLAGS.unparse_flags()
  argv, overrides = config_lib.split_overrides([program, *args])
  stdout, stderr = io.StringIO(), io.StringIO()
  code = 0
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    try:
      module.main(programs._parse_flags(argv), overrides)  # as app.run parses them
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
    except Exception:  # pylint: disable=broad-except  # what the suite must never see
      traceback.print_exc()
      code = -1
  return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def main():
  request = json.loads(sys.stdin.read())
  results = []
  for args in request["cases"]:
    before = _hashes(request["watch"])
    result = _run(request["program"], args)
    after = _hashes(request["watch"])
    result["changed"] = sorted(
      p for p in before.keys() | after.keys() if before.get(p) != after.get(p)
    )
    results.append(result)
  print(json.dumps(results))


if __name__ == "__main__":
  main()
