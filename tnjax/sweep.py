r"""Runs every point of a config's sweep(), each in its own sub-workdir, resumably.

  python -m tnjax.sweep --config configs/tt_mnist.py:fashion_idx,epochs=10 --workdir runs/fig1
  python -m tnjax.sweep --config ... --workdir ... --parallel 2 --points 0,3 --dry_run
  python -m tnjax.sweep --config ... --workdir ... --config.schedule.name=cosine --config.num_epochs=30
  python -m tnjax.sweep --config ... --workdir ... --seeds 0,1,2   # every point, 3 seeds

`sweep()` in the config module returns a list of override dicts (dotted keys,
e.g. {'model.layers.hidden.ranks': 4}; a value may be a whole dict, e.g. a new
layer spec). Point i runs in DIR/<ii>_<name>/ with point.json (its overrides);
with --seeds, each point runs once per seed in DIR/<ii>_<name>_seed=<s>/ (config.seed
set to s), and the report scripts give mean and standard deviation over them;
the trainer writes config.json, metrics.jsonl, checkpoints and, when it
finishes, result.json. A rerun skips points with result.json and resumes the
others from their newest checkpoint, so a killed sweep loses at most the steps
since each running point's last checkpoint.

Each point runs in a fresh `python -m tnjax.sweep --run_point` process: the
points of a sweep do not share JAX state and `--parallel N` runs N at a time.
A point's trainer holds its workdir's lock, so a second sweep over the same
workdir skips the points the first one is running. The children die with the
sweep: SIGTERM to the sweep is passed on (each child saves and exits), and a
killed sweep's children get SIGTERM from the kernel (parent-death signal).
The workdir may be local or gs://.
"""

from __future__ import annotations

import signal
import sys

from absl import app, flags

from tnjax import config_args
from tnjax import errors
from tnjax import programs
from tnjax.sweeps import children
from tnjax.sweeps.run import run_point_in_process, run_sweep
from tnjax.sweeps.status import sweep_status

# The points' API, as tnjax.sweep gives it.
from tnjax.sweeps.points import point_name, sweep_points, typed_overrides  # noqa: F401

_CONFIG = flags.DEFINE_string("config", None, "Config file[:args] whose module defines sweep().")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory holding one sub-workdir per point.")
_PARALLEL = flags.DEFINE_integer(
  "parallel", 1, "Points run at the same time on this host, each on its own chip / GPU."
)
_POINTS = flags.DEFINE_string("points", "", "Comma-separated point indices to run (default all).")
_SEEDS = flags.DEFINE_string(
  "seeds", "", "Comma-separated seeds: run every chosen point once per seed (config.seed)."
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the points and their state; run nothing.")
_STATUS = flags.DEFINE_bool(
  "status",
  False,
  "Print the sweep's table (every point's state, host, step, accuracy); "
  "--config is optional (without it: the points that have started).",
)
_RUN_POINT = flags.DEFINE_integer("run_point", None, "Internal: run this one point in-process.")
flags.mark_flags_as_required(["workdir"])  # --config too, except with --status


def main(argv, overrides: dict):
  programs.start(argv, compile_cache=False)
  if _STATUS.value:
    table = lambda: sweep_status(_WORKDIR.value, _CONFIG.value, _SEEDS.value, _POINTS.value)
    sys.exit(errors.run_cli(lambda: print(table())))
  if not _CONFIG.value:
    raise app.UsageError("--config is required (except with --status).")
  if _RUN_POINT.value is not None:
    sys.exit(
      errors.run_cli(
        lambda: run_point_in_process(_CONFIG.value, _WORKDIR.value, _RUN_POINT.value, overrides)
      )
    )
  # Preempted or Ctrl-C: every running point saves (a terminal's Ctrl-C reaches them too).
  signal.signal(signal.SIGTERM, children.CHILDREN.stop_all)
  signal.signal(signal.SIGINT, children.CHILDREN.stop_all)
  status = {}

  def sweep():
    status.update(
      run_sweep(
        _CONFIG.value,
        _WORKDIR.value,
        parallel=_PARALLEL.value,
        indices=config_args.parse_int_list(_POINTS.value, "--points"),
        dry_run=_DRY_RUN.value,
        overrides=overrides,
        seeds=config_args.parse_int_list(_SEEDS.value, "--seeds"),
      )
    )

  code = errors.run_cli(sweep)
  if code:
    sys.exit(code)
  if children.CHILDREN.stopping:
    stopped_by_ctrl_c = children.CHILDREN.signal == signal.SIGINT
    sys.exit(errors.EXIT_INTERRUPTED if stopped_by_ctrl_c else errors.EXIT_PREEMPTED)
  if not _DRY_RUN.value and any(s != "finished" for s in status.values()):
    sys.exit(1)


if __name__ == "__main__":
  programs.run_with_overrides(main)
