"""The learning rate of the pilot run with the best final test accuracy.

  python experiments/pick_rate.py runs/adtn_pilot/fc2_lr=*   # prints e.g. 0.003

Each argument is a finished run; its rate is read from its saved config. Ties go to
the smaller rate. A run without a result is an error: the pilot has not finished.
"""

from __future__ import annotations

import sys

from tnjax import fileio
from tnjax.training import run_files


def pick_rate(workdirs) -> float:
  scored = []
  for workdir in workdirs:
    run = fileio.workdir_path(workdir)
    result = fileio.read_json(run / run_files.RESULT)
    if result is None:
      raise SystemExit(f"pick_rate: {workdir} has no {run_files.RESULT}; finish the pilot first.")
    config = fileio.read_json(run / run_files.CONFIG)
    rate = float(config["schedule"]["learning_rate"])
    scored.append((-result["test_accuracy"], rate))
  return min(scored)[1]


if __name__ == "__main__":
  if len(sys.argv) < 2:
    sys.exit("usage: python experiments/pick_rate.py RUN_DIR...")
  print(pick_rate(sys.argv[1:]))
