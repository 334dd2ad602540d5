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

import concurrent.futures
import ctypes
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from absl import app, flags
import ml_collections

from tnjax import config_lib
from tnjax import errors
from tnjax import fileio
from tnjax.training import run_files

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


def sweep_points(module, common: dict | None = None) -> list[dict]:
  """The override dicts of the config module's sweep(), after the `common` ones, checked."""
  if not callable(getattr(module, "sweep", None)):
    raise errors.UserError(
      f"{module.__file__} defines no sweep(); add a function sweep() returning a list "
      "of override dicts to run it as a sweep."
    )
  points = module.sweep()
  if not isinstance(points, (list, tuple)) or not all(isinstance(p, dict) for p in points):
    raise errors.UserError(
      f"sweep() of {module.__file__} must return a list of dicts mapping dotted config "
      "fields to values."
    )
  return [{**(common or {}), **p} for p in points]


def typed_overrides(config, overrides: dict) -> dict:
  """The command-line overrides as the values they set (checked against the config)."""
  config = config_lib.apply_overrides(config, overrides)
  typed = {}
  for key in overrides:
    value = config
    for name in key.split("."):
      value = value[name]
    typed[key] = value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
  return typed


def point_config(module, arg, index: int, overrides: dict) -> ml_collections.ConfigDict:
  """Point `index`'s config: get_config(arg), the command-line overrides, then the point's."""
  base = config_lib.call_get_config(module, arg)
  common = typed_overrides(base, overrides)
  config = config_lib.apply_overrides(base, common)
  return config_lib.apply_overrides(config, sweep_points(module)[index], new_leaves=True)


def _short(value) -> str:
  if isinstance(value, (list, tuple)):
    return "x".join(_short(v) for v in value)
  if (
    isinstance(value, dict)
    and value
    and all(isinstance(v, dict) and "kind" in v for v in value.values())
  ):
    # A dict of layer specs (model.layers): 'conv2-tucker2x8_fc1-tt5'.
    return "_".join(f"{name}-{spec['kind']}{_spec_sizes(spec)}" for name, spec in value.items())
  if isinstance(value, dict):
    return "-".join(_short(v) for k, v in sorted(value.items()) if k != "kind") or "default"
  return str(value)


def _spec_sizes(spec: dict) -> str:
  sizes = [
    str(v)
    for k, v in spec.items()
    if k not in ("kind", "num_sketches", "order", "seed")
    and isinstance(v, int)
    and not isinstance(v, bool)
  ]
  return "x".join(sizes)


def point_name(index: int, overrides: dict) -> str:
  """A readable, filesystem-safe sub-workdir name: '03_ranks=4_in_shape=4x8x8x4'."""
  parts = []
  for key, value in overrides.items():
    leaf = key.rsplit(".", 1)[-1]
    if isinstance(value, dict) and "kind" in value:
      parts.append(f"{leaf}={value['kind']}-{_short(value)}")
    else:
      parts.append(f"{leaf}={_short(value)}")
  name = re.sub(r"[^A-Za-z0-9=._-]+", "-", "_".join(parts))[:80] or "base"
  return f"{index:02d}_{name}"


def run_point_in_process(config_path: str, workdir: str, index: int, overrides=None) -> dict:
  """Trains point `index` in this process (what each sweep subprocess does)."""
  from tnjax.training import preemption, trainer  # pylint: disable=g-import-not-at-top

  preemption.program_signal_handlers()
  module, arg = config_lib.load_module(config_path)
  config = point_config(module, arg, index, overrides or {})
  with config.unlocked():
    config.progress_bar = False  # the log is a file: epoch records only
    if not config.wandb.group:  # W&B shows a sweep's points (and seeds) as one group
      config.wandb.group = fileio.workdir_path(workdir).parent.name
  return trainer.train(config, workdir).result


def device_env(slot: int, parallel: int, platform: str | None = None) -> dict:
  """Environment that gives the point in `slot` (0..parallel-1) its own accelerator: one TPU
  chip or one GPU each, so `--parallel N` on an N-chip host runs N small points at once.
  Nothing with parallel 1 or on a CPU host."""
  if parallel <= 1:
    return {}
  platform = platform or _platform()
  if platform == "tpu":
    return {
      "TPU_VISIBLE_CHIPS": str(slot),
      "TPU_CHIPS_PER_PROCESS_BOUNDS": "1,1,1",
      "TPU_PROCESS_BOUNDS": "1,1,1",
      "TPU_PROCESS_PORT": str(8476 + slot),
      "TPU_MESH_CONTROLLER_PORT": str(8476 + slot),
    }
  if platform == "gpu":
    return {"CUDA_VISIBLE_DEVICES": str(slot)}
  return {}


def _platform() -> str:
  """The accelerator kind of this host, without starting JAX in the sweep process."""
  if os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0"):
    return "tpu"
  if os.path.exists("/dev/nvidia0"):
    return "gpu"
  return "cpu"


_PR_SET_PDEATHSIG = 1


def _die_with_parent():
  """Runs in the child before exec: SIGTERM it when the sweep process dies, however it dies."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
  except OSError:  # not Linux: the sweep's SIGTERM handler still passes signals on
    pass


class _Children:
  """The running point processes, so a SIGTERM to the sweep reaches each of them."""

  def __init__(self):
    self.processes, self.stopping, self._lock = set(), False, threading.Lock()
    self.signal = None

  def start(self, command, log, env=None):
    with self._lock:
      if self.stopping:
        return None
      process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
        env=None if env is None else {**os.environ, **env},
      )
      self.processes.add(process)
      return process

  def stop_all(self, signum=signal.SIGTERM, frame=None):
    del frame
    with self._lock:
      if self.stopping:  # a repeated signal: the points are already saving
        return
      self.stopping, self.signal = True, signum
      for process in self.processes:
        if process.poll() is None:
          process.send_signal(signum)


_CHILDREN = _Children()


def _launch(config_path: str, point_dir, index: int, overrides: dict, env=None) -> int:
  """Runs one point in a child process; its output goes to POINT_DIR/train.log."""
  point_dir = fileio.workdir_path(point_dir)
  command = [
    sys.executable,
    "-m",
    "tnjax.sweep",
    f"--config={config_path}",
    f"--workdir={point_dir}",
    f"--run_point={index}",
    *(f"--config.{key}={value}" for key, value in overrides.items()),
  ]
  remote = fileio.is_remote(point_dir)
  log = point_dir / run_files.TRAIN_LOG
  # gs:// objects cannot be appended to: log locally, then add the lines to train.log at the end.
  if remote:
    handle, log_path = tempfile.mkstemp(suffix=".log")
    os.close(handle)
  else:
    log_path = os.fspath(log)
  with open(log_path, "a") as log_file:
    process = _CHILDREN.start(command, log_file, env)
    code = errors.EXIT_PREEMPTED if process is None else process.wait()
    if process is not None:
      _CHILDREN.processes.discard(process)
  with open(log_path) as f:
    output = f.read()
  if remote:
    previous = log.read_text() if log.exists() else ""
    fileio.write_text(log, previous + output)
    os.remove(log_path)
  if code == errors.EXIT_USER_ERROR:  # the child's one line says what to fix
    reason = next(
      (line for line in reversed(output.splitlines()) if line.startswith("tnjax: error:")),
      f"exit {code}; see {run_files.TRAIN_LOG}",
    )
    fileio.write_json(point_dir / run_files.FAILED, {"message": reason})
  return code


def _check_same_point(point_dir, config_path: str, overrides: dict) -> None:
  """Refuses to resume a point directory that trained under other settings."""
  point_dir = fileio.workdir_path(point_dir)
  saved = fileio.read_json(point_dir / run_files.POINT)
  if saved is None or run_files.status(point_dir) in ("new", "failed"):  # nothing trained yet
    return
  now = json.loads(json.dumps({"config": config_path, "overrides": overrides}))
  saved = {k: saved.get(k) for k in now}
  if saved != now:
    differ = sorted(
      k
      for k in now["overrides"].keys() | (saved["overrides"] or {}).keys()
      if now["overrides"].get(k) != (saved["overrides"] or {}).get(k)
    )
    what = f"overrides differ in {differ}" if differ else f"config {saved['config']!r}"
    raise errors.UserError(
      f"{point_dir} trained under other settings ({what}; its {run_files.POINT} has "
      f"{saved}); use a new --workdir for changed settings."
    )


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
  base = config_lib.call_get_config(module, arg)
  common = typed_overrides(base, dict(overrides or {}))  # a typo fails here, before any point
  own_points = sweep_points(module)  # names leave out the settings common to all points
  points = [{**common, **p} for p in own_points]
  indices = list(range(len(points))) if indices is None else list(indices)
  bad = [i for i in indices if not 0 <= i < len(points)]
  if bad:
    raise errors.UserError(
      f"--points {bad} out of range: the sweep has {len(points)} points (0..{len(points) - 1})."
    )
  if parallel < 1:
    raise errors.UserError(f"--parallel must be >= 1, got {parallel}.")
  if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
    raise errors.UserError(f"--seeds must list distinct integers, e.g. --seeds 0,1,2; got {seeds}.")
  workdir = fileio.workdir_path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  # A job is (point index, seed or None); a seeded job sets config.seed on the command line.
  jobs = [(i, None) for i in indices] if seeds is None else [(i, s) for i in indices for s in seeds]
  dirs, job_overrides, recorded = {}, {}, {}
  for i, seed in jobs:
    suffix = "" if seed is None else f"_seed={seed}"
    dirs[i, seed] = workdir / (point_name(i, own_points[i]) + suffix)
    job_overrides[i, seed] = {**common, **({} if seed is None else {"seed": seed})}
    recorded[i, seed] = points[i] if seed is None else {**points[i], "seed": seed}
  for job in jobs:
    _check_same_point(dirs[job], config_path, recorded[job])
  for job in jobs:
    print(f"[{run_files.status(dirs[job]):>7}] {dirs[job]}  {recorded[job]}", flush=True)

  # A failed point is tried again: the command may now carry the fix.
  todo = [job for job in jobs if run_files.status(dirs[job]) in ("new", "failed", "partial")]
  if dry_run or not todo:
    return {job: run_files.status(dirs[job]) for job in jobs}
  for job in todo:
    fileio.write_json(
      dirs[job] / run_files.POINT,
      {"index": job[0], "config": config_path, "overrides": recorded[job]},
    )

  slots = queue.SimpleQueue()  # each running point holds one slot: its own chip or GPU
  for slot in range(parallel):
    slots.put(slot)

  def run(job):
    start, slot = time.time(), slots.get()
    try:
      env = device_env(slot, parallel)
      code = _launch(config_path, dirs[job], job[0], job_overrides[job], env or None)
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
    if state == "failed":
      reason = fileio.read_json(dirs[job] / run_files.FAILED)["message"]
      outcome = f"FAILED, nothing trained: {reason.removeprefix('tnjax: error: ')}"
    print(f"point {job} {outcome} after {time.time() - start:.0f} s: {dirs[job]}", flush=True)
    return state

  with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
    results = dict(zip(todo, pool.map(run, todo)))
  broken = [job for job, s in results.items() if s == "failed"]
  stopped = [job for job, s in results.items() if s not in ("done", "failed")]
  if broken:
    print(f"{len(broken)} point(s) failed on a problem to fix: {broken}; fix it and rerun.")
  if stopped:
    print(
      f"{len(stopped)} point(s) did not finish: {stopped}; rerun the same command to resume them."
    )
  return {job: run_files.status(dirs[job]) for job in jobs}


def sweep_status(workdir, config_path: str | None = None, seeds: str = "", points: str = "") -> str:
  """The status table of a sweep's workdir: the config's points (`points`, `seeds` as the
  sweep was run with), or without a config every point that has started."""
  workdir = fileio.workdir_path(workdir)
  if config_path:
    module, _ = config_lib.load_module(config_path)
    own = sweep_points(module)
    chosen = [int(i) for i in points.split(",")] if points else range(len(own))
    seed_list = [int(x) for x in seeds.split(",")] if seeds else [None]
    dirs = [
      workdir / (point_name(i, own[i]) + ("" if seed is None else f"_seed={seed}"))
      for i in chosen
      for seed in seed_list
    ]
  else:
    if not workdir.exists():
      raise errors.UserError(f"{workdir} does not exist; give the sweep's --workdir.")
    dirs = sorted(p for p in workdir.iterdir() if (p / run_files.POINT).exists())
  rows = [run_files.describe(d) for d in dirs]
  return run_files.status_table(rows)


def main(argv, overrides: dict):
  config_lib.start_program(argv)
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
  indices = [int(i) for i in _POINTS.value.split(",")] if _POINTS.value else None
  seeds = [int(s) for s in _SEEDS.value.split(",")] if _SEEDS.value else None
  # Preempted or Ctrl-C: every running point saves (a terminal's Ctrl-C reaches them too).
  signal.signal(signal.SIGTERM, _CHILDREN.stop_all)
  signal.signal(signal.SIGINT, _CHILDREN.stop_all)
  status = {}

  def sweep():
    status.update(
      run_sweep(
        _CONFIG.value,
        _WORKDIR.value,
        parallel=_PARALLEL.value,
        indices=indices,
        dry_run=_DRY_RUN.value,
        overrides=overrides,
        seeds=seeds,
      )
    )

  code = errors.run_cli(sweep)
  if code:
    sys.exit(code)
  if _CHILDREN.stopping:
    stopped_by_ctrl_c = _CHILDREN.signal == signal.SIGINT
    sys.exit(errors.EXIT_INTERRUPTED if stopped_by_ctrl_c else errors.EXIT_PREEMPTED)
  if not _DRY_RUN.value and any(s != "done" for s in status.values()):
    sys.exit(1)


if __name__ == "__main__":
  config_lib.run_with_overrides(main)
