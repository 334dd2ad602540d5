"""The status table of a sweep's workdir (`python -m tnjax.sweep --status`)."""

from __future__ import annotations

from tnjax import config_lib, errors, fileio
from tnjax import config_args
from tnjax.sweeps.points import check_seeds_are_free, point_name, sweep_points
from tnjax.training import run_files


def sweep_status(workdir, config_path: str | None = None, seeds: str = "", points: str = "") -> str:
  """The status table of a sweep's workdir: the config's points (`points`, `seeds` as the
  sweep was run with), or without a config every point that has started."""
  workdir = fileio.workdir_path(workdir)
  if config_path:
    module, arg = config_lib.load_module(config_path)
    own = sweep_points(module, arg=arg)
    chosen = config_args.parse_int_list(points, "--points") or range(len(own))
    bad = [i for i in chosen if not 0 <= i < len(own)]
    if bad:
      raise errors.UserError(
        f"--points {bad} out of range: the sweep has {len(own)} points (0..{len(own) - 1})."
      )
    seed_list = config_args.parse_int_list(seeds, "--seeds") or [None]
    check_seeds_are_free(own, chosen, seed_list != [None])
    dirs = [
      workdir / (point_name(i, own[i]) + ("" if seed is None else f"_seed={seed}"))
      for i in chosen
      for seed in seed_list
    ]
  else:
    if not workdir.exists():
      raise errors.UserError(f"{workdir} does not exist; give the sweep's --workdir.")
    dirs = sorted(p for p in workdir.iterdir() if (p / run_files.POINT).exists())
    if not dirs:
      raise errors.UserError(
        f"{workdir} holds no sweep points (no sub-directory with {run_files.POINT}); give a "
        "sweep's --workdir, or python -m tnjax.evaluate for a single run."
      )
  rows = [run_files.describe(d) for d in dirs]
  return run_files.status_table(rows)
