r"""Runs every point of a config's sweep(), each in its own sub-workdir, resumably.

  python -m tnjax.sweep --config configs/tt_mnist.py:fashion_idx,epochs=10 --workdir runs/fig1
  python -m tnjax.sweep --config ... --workdir ... --parallel 2 --points 0,3 --dry_run
  python -m tnjax.sweep --config ... --workdir ... --set schedule.name=cosine --set num_epochs=30
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

import ast
import concurrent.futures
import copy
import ctypes
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from absl import app, flags, logging
import ml_collections

from tnjax import errors
from tnjax import fileio
from tnjax import run_lock

_CONFIG = flags.DEFINE_string("config", None, "Config file[:args] whose module defines sweep().")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory holding one sub-workdir per point.")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Points run at the same time on this host.")
_POINTS = flags.DEFINE_string("points", "", "Comma-separated point indices to run (default all).")
_SEEDS = flags.DEFINE_string(
  "seeds", "", "Comma-separated seeds: run every chosen point once per seed (config.seed)."
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the points and their state; run nothing.")
_SET = flags.DEFINE_multi_string(
  "set",
  [],
  "key=value override applied to every point, e.g. --set num_epochs=30 "
  "--set schedule.name=cosine (values parsed as Python literals, else strings).",
)
_RUN_POINT = flags.DEFINE_integer("run_point", None, "Internal: run this one point in-process.")
flags.mark_flags_as_required(["config", "workdir"])


def load_config_module(config_path: str):
  """(module, arg) for 'path/to/x.py:arg'."""
  path, _, arg = config_path.partition(":")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Config file {path!r} does not exist.")
  spec = importlib.util.spec_from_file_location(
    "tnjax_sweep_config_" + re.sub(r"\W", "_", os.path.basename(path)[:-3]), path
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"{path} has no get_config(); it is not a tnjax config.")
  return module, (arg or None)


def parse_settings(settings) -> dict:
  """['a.b=1', 'c=cosine'] -> {'a.b': 1, 'c': 'cosine'} (Python literals, else strings)."""
  overrides = {}
  for item in settings:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
      raise ValueError(f"--set {item!r} must look like key=value, e.g. --set num_epochs=30.")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    overrides[key.strip()] = value
  return overrides


def sweep_points(config_path: str, settings=()) -> list[dict]:
  """The override dicts of the config's sweep() (after the common `settings`), checked."""
  module, _ = load_config_module(config_path)
  if not hasattr(module, "sweep"):
    raise ValueError(
      f"{config_path.partition(':')[0]} defines no sweep(); add a function "
      "sweep() returning a list of override dicts to run it as a sweep."
    )
  points = module.sweep()
  if not isinstance(points, (list, tuple)) or not all(isinstance(p, dict) for p in points):
    raise ValueError("sweep() must return a list of dicts mapping dotted config keys to values.")
  common = parse_settings(settings)
  return [{**common, **p} for p in points]


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


def apply_overrides(
  config: ml_collections.ConfigDict, overrides: dict
) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted-key overrides set (types may change: a point can swap a spec)."""
  config = copy.deepcopy(config)
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    for i, name in enumerate(parents):
      if name not in node:
        raise KeyError(
          f"Sweep override {key!r}: config has no field {'.'.join(parents[: i + 1])!r}."
        )
      node = node[name]
    with node.unlocked(), node.ignore_type():
      node[leaf] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
  return config


def point_status(point_dir) -> str:
  """new | partial | running (another process holds its lock) | diverged | done."""
  point_dir = fileio.workdir_path(point_dir)
  if (point_dir / "result.json").exists():
    return "done"
  if run_lock.holder(point_dir):
    return "running"
  if (point_dir / "diverged.json").exists():
    return "diverged"
  if (point_dir / "checkpoints").exists():
    return "partial"
  return "new"


def run_point_in_process(config_path: str, workdir: str, index: int, settings=()) -> dict:
  """Trains point `index` in this process (what each sweep subprocess does)."""
  from tnjax import trainer  # pylint: disable=g-import-not-at-top

  module, arg = load_config_module(config_path)
  overrides = sweep_points(config_path, settings)[index]
  config = apply_overrides(module.get_config(arg), overrides)
  with config.unlocked():
    config.progress_bar = False  # the log is a file: epoch records only
  return trainer.train_and_evaluate(config, workdir)


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

  def start(self, command, log):
    with self._lock:
      if self.stopping:
        return None
      process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
      )
      self.processes.add(process)
      return process

  def stop_all(self, signum=signal.SIGTERM, frame=None):
    del frame
    with self._lock:
      self.stopping = True
      for process in self.processes:
        if process.poll() is None:
          process.send_signal(signum)


_CHILDREN = _Children()


def _launch(config_path: str, point_dir, index: int, settings) -> int:
  """Runs one point in a child process; its output goes to POINT_DIR/train.log."""
  point_dir = fileio.workdir_path(point_dir)
  command = [
    sys.executable,
    "-m",
    "tnjax.sweep",
    f"--config={config_path}",
    f"--workdir={point_dir}",
    f"--run_point={index}",
    *(f"--set={s}" for s in settings),
  ]
  remote = fileio.is_remote(point_dir)
  # gs:// objects cannot be appended to: log locally, then add the lines to train.log at the end.
  if remote:
    handle, log_path = tempfile.mkstemp(suffix=".log")
    os.close(handle)
  else:
    log_path = os.fspath(point_dir / "train.log")
  with open(log_path, "a") as log:
    process = _CHILDREN.start(command, log)
    code = errors.EXIT_PREEMPTED if process is None else process.wait()
    if process is not None:
      _CHILDREN.processes.discard(process)
  if remote:
    previous = (point_dir / "train.log").read_text() if (point_dir / "train.log").exists() else ""
    with open(log_path) as f:
      fileio.write_text(point_dir / "train.log", previous + f.read())
    os.remove(log_path)
  return code


def _check_same_point(point_dir, config_path: str, overrides: dict) -> None:
  """Refuses to resume a point directory that was made with other settings."""
  saved = fileio.read_json(fileio.workdir_path(point_dir) / "point.json")
  if saved is None:
    return
  now = json.loads(json.dumps({"config": config_path, "overrides": overrides}))
  if {k: saved.get(k) for k in now} != now:
    raise ValueError(
      f"{point_dir} was made by --config={saved.get('config')} with overrides "
      f"{saved.get('overrides')}, not {now['overrides']}; use a new --workdir "
      "for changed settings."
    )


def run_sweep(
  config_path: str,
  workdir: str,
  *,
  parallel: int = 1,
  indices=None,
  dry_run: bool = False,
  settings=(),
  seeds=None,
) -> dict:
  """Runs the sweep's unfinished points; returns {index: final status}.

  With `seeds` (a list of ints) every chosen point runs once per seed, and the
  result is keyed by (index, seed).
  """
  settings = list(settings)
  points = sweep_points(config_path, settings)
  indices = list(range(len(points))) if indices is None else list(indices)
  bad = [i for i in indices if not 0 <= i < len(points)]
  if bad:
    raise ValueError(
      f"--points {bad} out of range: the sweep has {len(points)} points (0..{len(points) - 1})."
    )
  if parallel < 1:
    raise ValueError(f"--parallel must be >= 1, got {parallel}.")
  if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
    raise ValueError(f"--seeds must list distinct integers, e.g. --seeds 0,1,2; got {seeds}.")
  workdir = fileio.workdir_path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  own_points = sweep_points(config_path)  # names leave out the settings common to all points
  # A job is (point index, seed or None); a seeded job sets config.seed through its settings.
  jobs = [(i, None) for i in indices] if seeds is None else [(i, s) for i in indices for s in seeds]
  dirs, job_settings, overrides = {}, {}, {}
  for i, seed in jobs:
    suffix = "" if seed is None else f"_seed={seed}"
    dirs[i, seed] = workdir / (point_name(i, own_points[i]) + suffix)
    job_settings[i, seed] = settings + ([] if seed is None else [f"seed={seed}"])
    overrides[i, seed] = points[i] if seed is None else {**points[i], "seed": seed}
  for job in jobs:
    _check_same_point(dirs[job], config_path, overrides[job])
  for job in jobs:
    print(f"[{point_status(dirs[job]):>7}] {dirs[job]}  {overrides[job]}", flush=True)

  def key(job):
    return job[0] if seeds is None else job

  todo = [job for job in jobs if point_status(dirs[job]) in ("new", "partial")]
  if dry_run or not todo:
    return {key(job): point_status(dirs[job]) for job in jobs}
  for job in todo:
    fileio.write_json(
      dirs[job] / "point.json",
      {"index": job[0], "config": config_path, "overrides": overrides[job]},
    )

  def run(job):
    start = time.time()
    code = _launch(config_path, dirs[job], job[0], job_settings[job])
    state = point_status(dirs[job])
    outcome = {
      0: "finished",
      errors.EXIT_PREEMPTED: "stopped (saved; rerun to resume)",
      errors.EXIT_DIVERGED: "DIVERGED (see diverged.json)",
      errors.EXIT_WORKDIR_BUSY: "skipped: another process is training it",
    }.get(code, f"FAILED (exit {code}, see train.log)")
    print(f"point {key(job)} {outcome} after {time.time() - start:.0f} s: {dirs[job]}", flush=True)
    return state

  with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
    results = dict(zip(todo, pool.map(run, todo)))
  failed = [key(job) for job, s in results.items() if s != "done"]
  if failed:
    print(
      f"{len(failed)} point(s) did not finish: {failed}; rerun the same command to resume them."
    )
  return {key(job): point_status(dirs[job]) for job in jobs}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  if _RUN_POINT.value is not None:
    sys.exit(
      errors.run_cli(
        lambda: run_point_in_process(_CONFIG.value, _WORKDIR.value, _RUN_POINT.value, _SET.value)
      )
    )
  indices = [int(i) for i in _POINTS.value.split(",")] if _POINTS.value else None
  seeds = [int(s) for s in _SEEDS.value.split(",")] if _SEEDS.value else None
  signal.signal(signal.SIGTERM, _CHILDREN.stop_all)  # preempted: every running point saves
  status = {}

  def sweep():
    status.update(
      run_sweep(
        _CONFIG.value,
        _WORKDIR.value,
        parallel=_PARALLEL.value,
        indices=indices,
        dry_run=_DRY_RUN.value,
        settings=_SET.value,
        seeds=seeds,
      )
    )

  code = errors.run_cli(sweep)
  if code:
    sys.exit(code)
  if _CHILDREN.stopping:
    sys.exit(errors.EXIT_PREEMPTED)
  if not _DRY_RUN.value and any(s != "done" for s in status.values()):
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
