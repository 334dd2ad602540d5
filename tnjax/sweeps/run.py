"""Running a sweep: its points one after another (or --parallel at once, each in a child
process of its own), each point a training run in its own sub-workdir; what
`python -m tnjax.sweep` does once its flags are read."""

from __future__ import annotations

import concurrent.futures
import queue
import signal
import time

from tnjax import config_lib
from tnjax import errors
from tnjax import fileio
from tnjax import programs
from tnjax.sweeps import children
from tnjax.sweeps.points import (
  check_same_point,
  check_seeds_are_free,
  point_config,
  point_name,
  sweep_points,
  typed_overrides,
)
from tnjax.training import run_files


def run_point_in_process(config_path: str, workdir: str, index: int, overrides=None) -> dict:
  """Trains point `index` in this process (what each sweep subprocess does)."""
  from tnjax.training import preemption, trainer  # pylint: disable=g-import-not-at-top

  preemption.program_signal_handlers()
  programs.use_compile_cache()
  module, arg = config_lib.load_module(config_path)
  config = point_config(module, arg, index, overrides or {})
  with config.unlocked():
    config.progress_bar = False  # the log is a file: epoch records only
    if not config.wandb.group:  # W&B shows a sweep's points (and seeds) as one group
      config.wandb.group = fileio.workdir_path(workdir).parent.name
  return trainer.train(config, workdir).result


def run_sweep(
  config_path: str,
  workdir: str,
  *,
  parallel: int = 1,
  indices=None,
  dry_run: bool = False,
  overrides: dict | None = None,
  seeds=None,
) -> dict:
  """Runs the sweep's unfinished points; returns {(index, seed): final status}.

  `overrides` ({field: value or command-line text}) apply to every point (a point's
  own value wins). With `seeds` (a list of ints) every chosen point runs once per
  seed with config.seed set; without, seed is None in the keys.
  """
  module, arg = config_lib.load_module(config_path)  # the module is loaded once
  base = config_lib.config_of(module, arg)
  common = typed_overrides(base, dict(overrides or {}))  # a typo fails here, before any point
  own_points = sweep_points(module, arg=arg)  # names leave out the settings common to all points
  points = [{**common, **p} for p in own_points]
  indices = list(range(len(points))) if indices is None else list(indices)
  _check_choices(indices, len(points), parallel, seeds)
  check_seeds_are_free(own_points, indices, seeds)
  workdir = fileio.workdir_path(workdir)
  # A job is (point index, seed or None); a seeded job sets config.seed on the command line.
  jobs = [(i, None) for i in indices] if seeds is None else [(i, s) for i in indices for s in seeds]
  dirs, job_overrides, recorded = {}, {}, {}
  for i, seed in jobs:
    suffix = "" if seed is None else f"_seed={seed}"
    dirs[i, seed] = workdir / (point_name(i, own_points[i]) + suffix)
    job_overrides[i, seed] = {**common, **({} if seed is None else {"seed": seed})}
    recorded[i, seed] = points[i] if seed is None else {**points[i], "seed": seed}
  for job in jobs:  # every point's config built and checked before any point trains
    check_same_point(dirs[job], _job_config(module, arg, job, job_overrides[job], dirs[job]))
  for job in jobs:
    print(f"[{run_files.status(dirs[job]):>8}] {dirs[job]}  {recorded[job]}", flush=True)

  # A failed point is tried again: the command may now carry the fix.
  todo = [job for job in jobs if run_files.status(dirs[job]) in ("new", "failed", "partial")]
  diverged = [dirs[job].name for job in jobs if run_files.status(dirs[job]) == "diverged"]
  if diverged and not todo and not dry_run:
    print(f"{len(diverged)} point(s) diverged earlier: {', '.join(diverged)}; {DIVERGED_HINT}")
  if dry_run or not todo:
    return {job: run_files.status(dirs[job]) for job in jobs}
  workdir.mkdir(parents=True, exist_ok=True)
  for job in todo:
    fileio.write_json(
      dirs[job] / run_files.POINT,
      {"index": job[0], "config": config_path, "overrides": recorded[job]},
    )

  _run_jobs(config_path, todo, dirs, job_overrides, parallel)
  return {job: run_files.status(dirs[job]) for job in jobs}


def _job_config(module, arg, job, overrides: dict, point_dir):
  """The config the job's trainer will build (as train_point does), checked now so that a
  bad point (a misspelt field, a wrong value) is one line before any point trains."""
  from tnjax.training import validate  # pylint: disable=g-import-not-at-top

  try:
    with errors.input_errors_are_user_errors():
      config = point_config(module, arg, job[0], overrides)
      validate.validate_config(config, data_present=False)  # each trainer checks its own
  except errors.UserError as e:
    raise errors.UserError(f"sweep point {point_dir.name}: {e}") from None
  return config


def _check_choices(indices, num_points: int, parallel: int, seeds) -> None:
  """The command's --points, --parallel and --seeds, each refused in one line if wrong."""
  bad = [i for i in indices if not 0 <= i < num_points]
  if bad:
    raise errors.UserError(
      f"--points {bad} out of range: the sweep has {num_points} points (0..{num_points - 1})."
    )
  if parallel < 1:
    raise errors.UserError(f"--parallel must be >= 1, got {parallel}.")
  if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
    raise errors.UserError(f"--seeds must list distinct integers, e.g. --seeds 0,1,2; got {seeds}.")


DIVERGED_HINT = (
  f"a rerun does not retry them (see their {run_files.DIVERGED}): change the settings (e.g. a "
  "lower --config.schedule.learning_rate) into a new --workdir, or delete their directories."
)


def _run_jobs(config_path: str, todo, dirs: dict, job_overrides: dict, parallel: int) -> None:
  """Trains the `todo` jobs, `parallel` at a time (each on its own device slot), printing
  each one's outcome, then what failed or stopped."""
  slots = queue.SimpleQueue()  # each running point holds one slot: its own chip or GPU
  for slot in range(parallel):
    slots.put(slot)

  def run(job):
    start, slot = time.time(), slots.get()
    try:
      env = children.device_env(slot, parallel)
      code = children.launch(config_path, dirs[job], job[0], job_overrides[job], env or None)
    finally:
      slots.put(slot)
    state = run_files.status(dirs[job])
    outcome = {
      0: "finished",
      errors.EXIT_PREEMPTED: "stopped (saved; rerun to resume)",
      errors.EXIT_INTERRUPTED: "interrupted (saved; rerun to resume)",
      errors.EXIT_DIVERGED: f"DIVERGED (see {run_files.DIVERGED})",
      errors.EXIT_WORKDIR_BUSY: "skipped: another process is training it",
    }.get(code, f"FAILED (exit {code}, see {run_files.TRAIN_LOG})")
    if code in (-signal.SIGINT, -signal.SIGTERM):  # signalled before it set its handlers
      outcome = f"stopped by {signal.Signals(-code).name} (rerun to resume)"
    if state == "finished":  # a signal after its result was written (e.g. Ctrl-C) is no failure
      outcome = "finished"
    elif state == "new" and code in (errors.EXIT_PREEMPTED, errors.EXIT_INTERRUPTED):
      outcome = "stopped before it saved anything (rerun to run it)"  # or never started
    if state == "failed":
      reason = fileio.read_json(dirs[job] / run_files.FAILED)["message"]
      outcome = f"FAILED, nothing trained: {reason.removeprefix('tnjax: error: ')}"
    accuracy = run_files.describe(dirs[job]).get("test_accuracy")
    if state == "finished" and accuracy is not None:
      outcome += f": test accuracy {100 * accuracy:.2f}%"
    print(f"point {dirs[job].name} {outcome} after {time.time() - start:.0f} s", flush=True)
    return state

  with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
    results = dict(zip(todo, pool.map(run, todo)))
  broken = [job for job, s in results.items() if s == "failed"]
  diverged = [job for job, s in results.items() if s == "diverged"]
  stopped = [job for job, s in results.items() if s not in ("finished", "failed", "diverged")]
  names = lambda jobs: ", ".join(dirs[job].name for job in jobs)  # noqa: E731
  if broken:
    print(f"{len(broken)} point(s) failed on a problem to fix: {names(broken)}; fix it and rerun.")
  if diverged:
    print(f"{len(diverged)} point(s) diverged: {names(diverged)}; {DIVERGED_HINT}")
  if stopped:
    print(
      f"{len(stopped)} point(s) did not finish: {names(stopped)}; rerun the same command to "
      "resume them."
    )
