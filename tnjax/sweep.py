r"""Runs every point of a config's sweep(), each in its own sub-workdir, resumably.

  python -m tnjax.sweep --config configs/tt_mnist.py:fashion_idx,epochs=10 --workdir runs/fig1
  python -m tnjax.sweep --config ... --workdir ... --parallel 2 --points 0,3 --dry_run
  python -m tnjax.sweep --config ... --workdir ... --set schedule.name=cosine --set num_epochs=30

`sweep()` in the config module returns a list of override dicts (dotted keys,
e.g. {'model.hidden_layer.ranks': 4}; a value may be a whole dict, e.g. a new
layer spec). Point i runs in DIR/<ii>_<name>/ with point.json (its overrides);
the trainer writes config.json, metrics.jsonl, checkpoints and, when it
finishes, result.json. A rerun skips points with result.json and resumes the
others from their newest checkpoint, so a killed sweep loses at most the steps
since each running point's last checkpoint.

Each point runs in a fresh `python -m tnjax.sweep --run_point` process: the
points of a sweep do not share JAX state and `--parallel N` runs N at a time.
"""

from __future__ import annotations

import ast
import concurrent.futures
import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import time

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.getcwd(), _REPO_ROOT):  # configs import `configs.*`, as in tnjax.train
  if _path not in sys.path:
    sys.path.insert(0, _path)

from absl import app, flags, logging  # noqa: E402
import ml_collections  # noqa: E402

_CONFIG = flags.DEFINE_string("config", None, "Config file[:args] whose module defines sweep().")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory holding one sub-workdir per point.")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Points run at the same time on this host.")
_POINTS = flags.DEFINE_string("points", "", "Comma-separated point indices to run (default all).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the points and their state; run nothing.")
_SET = flags.DEFINE_multi_string(
    "set", [], "key=value override applied to every point, e.g. --set num_epochs=30 "
    "--set schedule.name=cosine (values parsed as Python literals, else strings).")
_RUN_POINT = flags.DEFINE_integer("run_point", None, "Internal: run this one point in-process.")
flags.mark_flags_as_required(["config", "workdir"])


def load_config_module(config_path: str):
  """(module, arg) for 'path/to/x.py:arg'."""
  path, _, arg = config_path.partition(":")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Config file {path!r} does not exist.")
  spec = importlib.util.spec_from_file_location(
      "tnjax_sweep_config_" + re.sub(r"\W", "_", os.path.basename(path)[:-3]), path)
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
    raise ValueError(f"{config_path.partition(':')[0]} defines no sweep(); add a function "
                     "sweep() returning a list of override dicts to run it as a sweep.")
  points = module.sweep()
  if not isinstance(points, (list, tuple)) or not all(isinstance(p, dict) for p in points):
    raise ValueError("sweep() must return a list of dicts mapping dotted config keys to values.")
  common = parse_settings(settings)
  return [{**common, **p} for p in points]


def _short(value) -> str:
  if isinstance(value, (list, tuple)):
    return "x".join(_short(v) for v in value)
  if isinstance(value, dict) and value and all(isinstance(v, dict) and "kind" in v
                                               for v in value.values()):
    # A dict of layer specs (model.layers): 'conv2-tucker2x8_fc1-tt5'.
    return "_".join(f"{name}-{spec['kind']}{_spec_sizes(spec)}" for name, spec in value.items())
  if isinstance(value, dict):
    return "-".join(_short(v) for k, v in sorted(value.items()) if k != "kind") or "default"
  return str(value)


def _spec_sizes(spec: dict) -> str:
  sizes = [str(v) for k, v in spec.items() if k not in ("kind", "num_sketches", "order", "seed")
           and isinstance(v, int) and not isinstance(v, bool)]
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


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted-key overrides set (types may change: a point can swap a spec)."""
  config = copy.deepcopy(config)
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    for i, name in enumerate(parents):
      if name not in node:
        raise KeyError(f"Sweep override {key!r}: config has no field {'.'.join(parents[:i + 1])!r}.")
      node = node[name]
    with node.unlocked(), node.ignore_type():
      node[leaf] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
  return config


def point_status(point_dir: str) -> str:
  if os.path.exists(os.path.join(point_dir, "result.json")):
    return "done"
  if os.path.isdir(os.path.join(point_dir, "checkpoints")):
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


def _launch(config_path: str, point_dir: str, index: int, settings) -> int:
  log_path = os.path.join(point_dir, "train.log")
  command = [sys.executable, "-m", "tnjax.sweep", f"--config={config_path}",
             f"--workdir={point_dir}", f"--run_point={index}", *(f"--set={s}" for s in settings)]
  with open(log_path, "a") as log:
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def _check_same_point(point_dir: str, config_path: str, overrides: dict) -> None:
  """Refuses to resume a point directory that was made with other settings."""
  path = os.path.join(point_dir, "point.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = json.load(f)
  now = json.loads(json.dumps({"config": config_path, "overrides": overrides}))
  if {k: saved.get(k) for k in now} != now:
    raise ValueError(f"{point_dir} was made by --config={saved.get('config')} with overrides "
                     f"{saved.get('overrides')}, not {now['overrides']}; use a new --workdir "
                     "for changed settings.")


def run_sweep(config_path: str, workdir: str, *, parallel: int = 1, indices=None,
              dry_run: bool = False, settings=()) -> dict[int, str]:
  """Runs the sweep's unfinished points; returns {index: final status}."""
  settings = list(settings)
  points = sweep_points(config_path, settings)
  indices = list(range(len(points))) if indices is None else list(indices)
  bad = [i for i in indices if not 0 <= i < len(points)]
  if bad:
    raise ValueError(f"--points {bad} out of range: the sweep has {len(points)} points (0..{len(points) - 1}).")
  if parallel < 1:
    raise ValueError(f"--parallel must be >= 1, got {parallel}.")
  os.makedirs(workdir, exist_ok=True)
  own_points = sweep_points(config_path)  # names leave out the settings common to all points
  dirs = {i: os.path.join(workdir, point_name(i, own_points[i])) for i in indices}
  for i in indices:
    _check_same_point(dirs[i], config_path, points[i])
  for i in indices:
    print(f"[{point_status(dirs[i]):>7}] {dirs[i]}  {points[i]}", flush=True)
  todo = [i for i in indices if point_status(dirs[i]) != "done"]
  if dry_run or not todo:
    return {i: point_status(dirs[i]) for i in indices}
  for i in todo:
    os.makedirs(dirs[i], exist_ok=True)
    with open(os.path.join(dirs[i], "point.json"), "w") as f:
      json.dump({"index": i, "config": config_path, "overrides": points[i]}, f, indent=1)

  def run(i):
    start = time.time()
    code = _launch(config_path, dirs[i], i, settings)
    state = point_status(dirs[i])
    print(f"point {i} {'finished' if code == 0 else f'FAILED (exit {code}, see train.log)'} "
          f"in {time.time() - start:.0f} s: {dirs[i]}", flush=True)
    return state

  with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
    results = dict(zip(todo, pool.map(run, todo)))
  failed = [i for i, s in results.items() if s != "done"]
  if failed:
    print(f"{len(failed)} point(s) did not finish: {failed}; rerun the same command to resume them.")
  return {i: point_status(dirs[i]) for i in indices}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  if _RUN_POINT.value is not None:
    run_point_in_process(_CONFIG.value, _WORKDIR.value, _RUN_POINT.value, _SET.value)
    return
  indices = [int(i) for i in _POINTS.value.split(",")] if _POINTS.value else None
  status = run_sweep(_CONFIG.value, _WORKDIR.value, parallel=_PARALLEL.value, indices=indices,
                     dry_run=_DRY_RUN.value, settings=_SET.value)
  if not _DRY_RUN.value and any(s != "done" for s in status.values()):
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
