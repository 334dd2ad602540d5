"""The sweep runner: point names, overrides, and a sweep killed midway resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tnjax import config_lib, sweep
from tnjax.sweeps import children
from tnjax.training import run_files, writers
from tnjax.configs import cpac_mnist, tt_mnist

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _points(config_path, overrides=None):
  module, arg = config_lib.load_module(config_path)
  base = module.get_config(arg) if arg else module.get_config()
  return sweep.sweep_points(module, sweep.typed_overrides(base, overrides or {}))


# Three small points on synthetic data; every point checkpoints every 4 steps.
_SWEEP_CONFIG = """
from tnjax.configs import tt_mnist

def get_config(arg=None):
  c = tt_mnist.get_config("synthetic,runlocal")
  c.num_epochs = 4
  c.data.max_train_examples = 0
  c.data.synthetic.num_train = 256
  c.checkpoint.every_steps = 4
  c.checkpoint.async_save = False
  return c

def sweep():
  return [{"model.layers.hidden.ranks": r} for r in (1, 2)] + [
      {"model.layers.hidden": {"kind": "lowrank", "rank": 3}}]
"""


def test_point_names_are_readable_and_distinct():
  points = tt_mnist.sweep()
  names = [sweep.point_name(i, p) for i, p in enumerate(points)]
  assert len(set(names)) == len(names)
  assert names[0] == "00_ranks=1_in_shape=32x32_out_shape=32x32_clip_ranks=False"
  assert (
    sweep.point_name(2, {"model.conv_layer": {"kind": "tucker", "in_rank": 4}})
    == "02_conv_layer=tucker-4"
  )


def test_overrides_set_nested_fields_and_swap_whole_specs():
  config = cpac_mnist.get_config("fast")
  changed = config_lib.apply_overrides(config, {"model.conv_layer.rank": 7, "num_epochs": 3})
  assert (changed.model.conv_layer.rank, changed.num_epochs) == (7, 3)
  assert config.model.conv_layer.rank == 4  # the original is untouched
  swapped = config_lib.apply_overrides(
    config, {"model.conv_layer": {"kind": "dense", "use_bias": False}}
  )
  assert swapped.model.conv_layer.to_dict() == {"kind": "dense", "use_bias": False}
  with pytest.raises(ValueError, match="config has no field 'modle'; nearest: model"):
    config_lib.apply_overrides(config, {"modle.conv_layer.rank": 2})
  # Command-line text is parsed by the type of the field it sets.
  typed = config_lib.apply_overrides(
    config, {"num_epochs": "3", "schedule.learning_rate": "0.5", "progress_bar": "false"}
  )
  assert (typed.num_epochs, typed.schedule.learning_rate, typed.progress_bar) == (3, 0.5, False)
  with pytest.raises(ValueError, match="--config.num_epochs='x' is not an int"):
    config_lib.apply_overrides(config, {"num_epochs": "x"})


def test_bad_sweeps_give_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="defines no sweep"):
    _points(os.path.join(REPO, "configs/dense_mnist.py"))
  with pytest.raises(ValueError, match="out of range: the sweep has 20 points"):
    sweep.run_sweep(os.path.join(REPO, "configs/tt_mnist.py"), str(tmp_path), indices=[20])
  # A bad point is one line naming it before any point trains, --dry_run included.
  bad = tmp_path / "bad_sweep.py"
  bad.write_text(
    _SWEEP_CONFIG.replace(
      '"model.layers.hidden.ranks": r} for r in (1, 2)',
      '"model.layers.hidden.rnks": r} for r in (1, 2)',
    )
  )
  for dry_run in (True, False):
    with pytest.raises(
      ValueError,
      match=r"sweep point 00_rnks=1: config.model.layers.hidden: .*no field\(s\) \['rnks'\]",
    ):
      sweep.run_sweep(str(bad), str(tmp_path / "bad"), dry_run=dry_run)
  assert not any((tmp_path / "bad").glob("*/*"))
  # A sweep() that raises, returns nothing usable or sets what --seeds sets: one line each.
  broken = {
    "raises": (
      "def sweep():\n  return [{'num_epochs': 1 / 0}]",
      r"raises.py line \d+: ZeroDivisionError: division by zero; fix the file",
    ),
    "empty": ("def sweep():\n  return []", r"must return a non-empty list of dicts"),
    "int_keys": ("def sweep():\n  return [{1: 2}]", r"fields \(strings\) to values; got \[\{1: 2"),
    "two_args": ("def sweep(a, b):\n  return []", r"needs 2 arguments; it takes none, or one"),
    "seeded": ("def sweep():\n  return [{'seed': 5}]", r"point 00_seed=5 sets seed=5, so --seeds"),
  }
  for name, (function, message) in broken.items():
    path = tmp_path / f"{name}.py"
    path.write_text(_SWEEP_CONFIG[: _SWEEP_CONFIG.index("def sweep")] + function + "\n")
    with pytest.raises(ValueError, match=message):
      sweep.run_sweep(str(path), str(tmp_path / name), dry_run=True, seeds=[0, 1])
  from tnjax.sweeps.status import sweep_status  # pylint: disable=g-import-not-at-top

  with pytest.raises(ValueError, match=broken["seeded"][1]):  # --status lists as it would run
    sweep_status(str(tmp_path / "seeded"), str(tmp_path / "seeded.py"), seeds="0,1")
  good = tmp_path / "good_sweep.py"
  good.write_text(_SWEEP_CONFIG)
  with pytest.raises(ValueError, match=r"config.seed=4294967296 must be below 2\*\*32"):
    sweep.run_sweep(str(good), str(tmp_path / "big"), dry_run=True, seeds=[2**32])
  # Data and pretrained files are each trainer's to find: a sweep previews without them.
  status = sweep.run_sweep(
    os.path.join(REPO, "configs/tt_vgg16.py:normalization=caffe"),
    str(tmp_path / "vgg"),
    dry_run=True,
    overrides={"data.data_dir": str(tmp_path / "none"), "pretrained.path": "/nowhere/vgg16.h5"},
  )
  assert set(status.values()) == {"new"} and not (tmp_path / "vgg").exists()


def _run_sweep_cli(config, workdir, **popen_kwargs):
  env = dict(os.environ, WANDB_MODE="disabled", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  command = [sys.executable, "-m", "tnjax.sweep", f"--config={config}", f"--workdir={workdir}"]
  return subprocess.Popen(
    command,
    cwd=REPO,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
    **popen_kwargs,
  )


@pytest.mark.slow
def test_sweep_killed_midway_resumes_without_redoing_finished_points(tmp_path):
  config = tmp_path / "small_sweep.py"
  config.write_text(_SWEEP_CONFIG)
  workdir = tmp_path / "sweep"
  dirs = [workdir / sweep.point_name(i, p) for i, p in enumerate(_points(str(config)))]

  # Kill the whole process group once point 0 is done and point 1 has a checkpoint.
  process = _run_sweep_cli(str(config), str(workdir), start_new_session=True)
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    ckpts = dirs[1] / "checkpoints"
    if (
      (dirs[0] / "result.json").exists()
      and ckpts.exists()
      and any(d.isdigit() for d in os.listdir(ckpts))
    ):
      break
    time.sleep(0.05)
  still_running = process.poll() is None
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  assert still_running, "the sweep finished before it could be killed; make the points longer"
  deadline = time.time() + 30  # the killed trainer's lock goes when the kernel reaps it
  while run_files.status(str(dirs[1])) == "running" and time.time() < deadline:
    time.sleep(0.05)
  assert [run_files.status(str(d)) for d in dirs] == ["finished", "partial", "new"]
  finished_metrics = (dirs[0] / "metrics.jsonl").read_bytes()

  resumed = _run_sweep_cli(str(config), str(workdir))
  output, _ = resumed.communicate(timeout=300)
  assert resumed.returncode == 0, output[-3000:]
  assert f"[finished] {dirs[0]}" in output and f"[ partial] {dirs[1]}" in output
  assert (dirs[0] / "metrics.jsonl").read_bytes() == finished_metrics  # not rerun
  assert "Resumed from" in (dirs[1] / "train.log").read_text()
  total_steps = 4 * (256 // 16)
  for point_dir, expected_kind in zip(dirs, ("tt", "tt", "lowrank")):
    result = json.loads((point_dir / "result.json").read_text())
    assert result["step"] == total_steps
    saved = json.loads((point_dir / "config.json").read_text())
    assert saved["model"]["layers"]["hidden"]["kind"] == expected_kind
    epochs = [r["epoch"] for r in writers.read_metrics(str(point_dir)) if "test_accuracy" in r]
    assert epochs[-1] == 4
  point = json.loads((dirs[2] / "point.json").read_text())
  assert point["overrides"] == {"model.layers.hidden": {"kind": "lowrank", "rank": 3}}


@pytest.mark.slow  # trains points through the sweep's child processes
def test_common_settings_apply_to_every_point_and_changed_settings_are_refused(tmp_path):
  config = os.path.join(REPO, "configs/tt_mnist.py:synthetic,runlocal")
  settings = {
    "num_epochs": "1",
    "schedule.name": "cosine",
    "model.layers.hidden.in_shape": "(4, 8, 8, 4)",
  }
  points = _points(config, settings)
  assert all(p["num_epochs"] == 1 and p["schedule.name"] == "cosine" for p in points)
  assert points[8]["model.layers.hidden.in_shape"] == (4, 4, 4, 4, 4)  # the point's own value wins
  with pytest.raises(ValueError, match="config has no field 'num_epoch'; nearest: num_epochs"):
    sweep.run_sweep(config, str(tmp_path), indices=[0], overrides={"num_epoch": "1"})
  assert not list(tmp_path.iterdir())  # refused before any point was written
  status = sweep.run_sweep(config, str(tmp_path), indices=[0], overrides={"num_epochs": "1"})
  assert status == {(0, None): "finished"}
  point_dir = tmp_path / sweep.point_name(0, _points(config)[0])
  assert json.loads((point_dir / "config.json").read_text())["num_epochs"] == 1
  with pytest.raises(
    ValueError, match=r"other settings \(num_epochs: 1 -> 2\); use a new --workdir"
  ):
    sweep.run_sweep(config, str(tmp_path), indices=[0], overrides={"num_epochs": "2"})
  # The same settings written another way (the config's short name, its arguments swapped).
  again = sweep.run_sweep(
    "tt_mnist:runlocal,synthetic", str(tmp_path), indices=[0], overrides={"num_epochs": "1"}
  )
  assert again == {(0, None): "finished"}


@pytest.mark.slow  # trains points through the sweep's child processes
def test_seeds_run_every_point_once_per_seed_in_its_own_directory(tmp_path):
  config = os.path.join(REPO, "configs/tt_mnist.py:synthetic,runlocal")
  settings = {"num_epochs": 1, "data.max_train_examples": 32}
  status = sweep.run_sweep(config, str(tmp_path), indices=[1], overrides=settings, seeds=[0, 3])
  assert status == {(1, 0): "finished", (1, 3): "finished"}
  name = sweep.point_name(1, _points(config)[1])
  for seed in (0, 3):
    point_dir = tmp_path / f"{name}_seed={seed}"
    saved = json.loads((point_dir / "config.json").read_text())
    assert saved["seed"] == seed
    assert saved["wandb"]["group"] == tmp_path.name  # W&B groups a sweep's runs
    assert json.loads((point_dir / "point.json").read_text())["overrides"]["seed"] == seed
  results = [
    json.loads((tmp_path / f"{name}_seed={s}" / "result.json").read_text()) for s in (0, 3)
  ]
  assert results[0]["train_loss"] != results[1]["train_loss"]  # different seeds, different runs
  with pytest.raises(ValueError, match="--seeds must list distinct integers"):
    sweep.run_sweep(config, str(tmp_path), indices=[1], seeds=[0, 0])


def test_points_that_swap_several_layers_get_readable_names():
  from tnjax.configs import sketch_mnist

  names = [sweep.point_name(i, p) for i, p in enumerate(sketch_mnist.sweep())]
  assert names[0] == "00_layers=conv2-sketch1_fc1-sketch4_fc2-sketch4"
  assert names[1] == "01_layers=conv2-tucker3x10_fc1-tt5_fc2-tt4"
  assert names[6] == "06_layers=conv2-sketch1" and names[7] == "07_layers=conv2-tucker3x6"
  assert names[-1] == "13_layers=default" and len(set(names)) == len(names)


def test_status_shows_every_state_of_a_sweep_in_one_table(tmp_path):
  from tnjax import fileio
  from tnjax.training import run_lock

  def point(name, index, seed, **files):
    directory = tmp_path / name
    directory.mkdir()
    fileio.write_json(directory / "point.json", {"index": index, "overrides": {"seed": seed}})
    for file, content in files.items():
      if file == "checkpoints":
        (directory / "checkpoints" / str(content)).mkdir(parents=True)
      else:
        fileio.write_json(directory / file, content)
    return directory

  point("00_a_seed=0", 0, 0, **{"result.json": {"test_accuracy": 0.875}})
  point("00_a_seed=1", 0, 1, checkpoints=64)
  point("01_b_seed=0", 1, 0, **{"diverged.json": {"message": "nan"}})
  point("01_b_seed=1", 1, 1, **{"failed.json": {"message": "tnjax: error: bad spec"}})
  point("02_c_seed=0", 2, 0)
  running = point("02_c_seed=1", 2, 1, checkpoints=32)
  lock = run_lock.WorkdirLock(running).acquire()
  try:
    table = sweep.sweep_status(str(tmp_path))
  finally:
    lock.release()
  lines = table.splitlines()
  assert "87.50%" in lines[1] and "finished" in lines[1]
  assert "partial (step 64)" in lines[2]
  assert "diverged" in lines[3] and "failed" in lines[4] and "new" in lines[5]
  assert lines[4].endswith("01_b_seed=1  (bad spec)")  # why it failed, as the README says
  assert "running on" in lines[6] and "(step 32)" in lines[6]
  assert lines[-1] == "6 runs: 1 new, 1 failed, 1 partial, 1 running, 1 diverged, 1 finished."


def test_parallel_points_each_get_their_own_chip_or_gpu(tmp_path, monkeypatch):
  assert children.device_env(1, 4, "tpu")["TPU_VISIBLE_CHIPS"] == "1"
  assert children.device_env(0, 1, "gpu") == {} and children.device_env(2, 4, "cpu") == {}
  monkeypatch.setattr(children, "_platform", lambda: "gpu")
  running, seen = set(), []

  class Finished:
    def __init__(self, device):
      self.device = device

    def wait(self):
      time.sleep(0.3)  # two points overlap: each must hold its own device meanwhile
      running.discard(self.device)
      return 0

  def start(command, log, env=None):
    device = env["CUDA_VISIBLE_DEVICES"]
    assert device not in running
    running.add(device)
    seen.append(device)
    return Finished(device)

  monkeypatch.setattr(children.CHILDREN, "start", start)
  config = os.path.join(REPO, "configs/tt_mnist.py:synthetic,runlocal")
  sweep.run_sweep(config, str(tmp_path), indices=[0, 1, 2, 3], parallel=2)
  assert sorted(seen) == ["0", "0", "1", "1"]


def test_a_point_signalled_after_writing_its_result_is_reported_finished(
  tmp_path, monkeypatch, capsys
):
  """Ctrl-C can reach a point between its result.json and its exit: it finished."""

  class SignalledAfterResult:
    def __init__(self, workdir):
      self.workdir = workdir

    def wait(self):
      (self.workdir / run_files.RESULT).write_text(json.dumps({"test_accuracy": 0.5}))
      return -signal.SIGINT

  def start(command, log, env=None):
    (point,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return SignalledAfterResult(point)

  monkeypatch.setattr(children.CHILDREN, "start", start)
  sweep.run_sweep(
    os.path.join(REPO, "configs/tt_mnist.py:synthetic,runlocal"), str(tmp_path), indices=[0]
  )
  out = capsys.readouterr().out
  assert "finished: test accuracy 50.00%" in out and "FAILED" not in out


def test_a_point_the_stopped_sweep_never_started_does_not_claim_it_saved(
  tmp_path, monkeypatch, capsys
):
  monkeypatch.setattr(children.CHILDREN, "start", lambda command, log, env=None: None)
  sweep.run_sweep(
    os.path.join(REPO, "configs/tt_mnist.py:synthetic,runlocal"), str(tmp_path), indices=[0]
  )
  out = capsys.readouterr().out
  assert "stopped before it saved anything (rerun to run it)" in out and "(saved;" not in out


def test_a_point_killed_before_it_started_or_diverged_is_told_so_not_failed(
  tmp_path, monkeypatch, capsys
):
  from tnjax import errors, fileio

  def launch(config_path, point_dir, index, overrides, env):
    if index == 0:
      return -signal.SIGINT  # Ctrl-C before the child set its handlers
    fileio.write_json(point_dir / run_files.DIVERGED, {"message": "loss nan at step 3"})
    return errors.EXIT_DIVERGED

  monkeypatch.setattr(children, "launch", launch)
  config = tmp_path / "sweep.py"
  config.write_text(_SWEEP_CONFIG)
  status = sweep.run_sweep(str(config), str(tmp_path / "w"), indices=[0, 1])
  assert status == {(0, None): "new", (1, None): "diverged"}
  out = capsys.readouterr().out
  assert "point 00_ranks=1 stopped by SIGINT (rerun to resume)" in out and "FAILED" not in out
  assert "1 point(s) diverged: 01_ranks=2; a rerun does not retry them" in out
  assert "did not finish: 00_ranks=1;" in out  # only the stopped one is to resume
  sweep.run_sweep(str(config), str(tmp_path / "w"), indices=[1])
  assert (
    "1 point(s) diverged earlier: 01_ranks=2; a rerun does not retry" in capsys.readouterr().out
  )


def test_a_point_that_crashes_before_saving_shows_failed_and_why_in_status(tmp_path, monkeypatch):
  start = children.CHILDREN.start

  def crashing(command, log, env=None):  # the trainer dies on a bug: a traceback, exit 1
    crash = "print('Traceback (most recent call last):'); print('ZeroDivisionError: boom'); exit(1)"
    return start([sys.executable, "-c", crash], log, env)

  monkeypatch.setattr(children.CHILDREN, "start", crashing)
  point = tmp_path / "00_a"
  point.mkdir()  # the sweep writes point.json there first
  assert children.launch("unused.py", point, 0, {}) == 1
  assert run_files.status(point) == "failed"
  row = run_files.describe(point)
  assert "crashed (exit 1; train.log ends: ZeroDivisionError: boom)" in row["reason"]
  assert run_files.status_table([row]).splitlines()[1].endswith("ZeroDivisionError: boom))")
