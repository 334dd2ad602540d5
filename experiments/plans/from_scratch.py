"""The architecture of a finished (e.g. compressed) run, trained from its initialisation:
the compress study's baseline.

  python -m tnjax.train --config experiments/plans/from_scratch.py:run=RUN_DIR,epochs=12 --workdir W
"""

import ml_collections

from tnjax import config_args
from tnjax import fileio
from tnjax.training import run_files


def get_config(arg=None):
  args = config_args.parse_arg(arg, run="", epochs=0)
  saved = fileio.read_json(fileio.workdir_path(args.run) / run_files.CONFIG)
  if saved is None:
    raise ValueError(f"run={args.run!r} holds no {run_files.CONFIG}.")
  c = ml_collections.ConfigDict(saved)
  c.pretrained.path = ""  # from the initialisation, not from the converted weights
  if args.epochs:
    c.num_epochs = args.epochs
  return c
