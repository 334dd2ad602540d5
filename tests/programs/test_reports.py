"""Report scripts read sweep workdirs and write the tables and figures from them."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tnjax.configs import cpac_mnist, sketch_mnist, tt_mnist, dense_mnist

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fake_run(directory, config, accuracy, num_params, epoch_seconds=(2.0, 3.0, 4.0)):
  """A finished run as the trainer leaves it: config.json, metrics.jsonl, result.json."""
  os.makedirs(directory)
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(config.to_dict(), f)
  with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
    for epoch, seconds in enumerate(epoch_seconds, 1):
      f.write(
        json.dumps(
          {"step": epoch, "test_accuracy": accuracy, "epoch": epoch, "epoch_seconds": seconds}
        )
        + "\n"
      )
  with open(os.path.join(directory, "result.json"), "w") as f:
    json.dump({"test_accuracy": accuracy, "num_params": num_params}, f)


def _script(script, *args):
  """Runs experiments/SCRIPT with ARGS; the finished process (exit code, output)."""
  return subprocess.run(
    [sys.executable, os.path.join(REPO, "experiments", script), *map(str, args)],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
    env=dict(os.environ, JAX_PLATFORMS="cpu"),
  )


def _report(script, workdirs, out, suffixes=(".md", ".csv", ".png")):
  args = ["--out", out]
  for w in workdirs:
    args += ["--workdir", w]
  result = _script(script, *args)
  assert result.returncode == 0, result.stderr[-2000:]
  for suffix in suffixes:
    assert os.path.getsize(str(out) + suffix) > 0
  with open(str(out) + ".csv") as f:
    return list(csv.DictReader(f))


@pytest.mark.slow
def test_novikov_fig1_counts_first_layer_weights_from_the_specs(tmp_path):
  sweep_dir = tmp_path / "tt"
  _fake_run(sweep_dir / "00_r8", tt_mnist.get_config("rank=8"), 0.9, 19722)
  seed_1 = tt_mnist.get_config("rank=8")
  seed_1.seed = 1
  _fake_run(sweep_dir / "00_r8_seed=1", seed_1, 0.92, 19722)  # the same point, another seed
  _fake_run(sweep_dir / "01_r2", tt_mnist.get_config("rank=2,shape=4x4x4x4x4"), 0.8, 11530)
  _fake_run(tmp_path / "dense", dense_mnist.get_config(), 0.95, 1059850, epoch_seconds=(5.0,))
  rows = _report("novikov_fig1.py", [sweep_dir, tmp_path / "dense"], tmp_path / "fig1")
  by_curve = {(r["first layer"], r["rank"]): r for r in rows}
  assert by_curve[("TT 4x8x8x4", "8")]["first-layer weights"] == "8,448"
  # errors 10% and 8%: mean 9%, sample standard deviation sqrt(2) = 1.41%
  assert by_curve[("TT 4x8x8x4", "8")]["test error"] == "9.00 ± 1.41% (2 seeds)"
  assert by_curve[("TT 4x8x8x4", "8")]["s / epoch"] == "3.0"  # median of the epochs
  assert by_curve[("TT 4x4x4x4x4", "2")]["first-layer weights"] == "256"
  assert by_curve[("dense", "-")]["first-layer weights"] == "1,048,576"


@pytest.mark.slow
def test_cpac_and_sketch_tables(tmp_path):
  _fake_run(tmp_path / "cpac" / "00", cpac_mnist.get_config("rank=2,fast"), 0.83, 10650)
  _fake_run(tmp_path / "cpac" / "01", cpac_mnist.get_config("dense,fast"), 0.87, 11208)
  with open(tmp_path / "cpac" / "00" / "result.json", "w") as f:  # its best epoch beat the last
    json.dump({"test_accuracy": 0.83, "best_test_accuracy": 0.85, "num_params": 10650}, f)
  rows = _report("cpac_rank_table.py", [tmp_path / "cpac"], tmp_path / "cpac_table")
  assert [r["network"] for r in rows] == ["CPAC R=2", "dense conv (no bias)"]
  assert rows[0]["test acc (last epoch)"] == "83.00 ± 0.00% (1 seed)"
  assert rows[0]["test acc (best epoch)"] == "85.00 ± 0.00% (1 seed)"
  assert rows[0]["conv weights"] == "74" and rows[0]["paper (MNIST)"] == "96.79%"
  assert rows[1]["conv compression"] == "1.0x"

  # The one-conv sweep: R = 2 has no number in the sources (two-conv's 96.79% is not it).
  _fake_run(tmp_path / "one" / "00", cpac_mnist.get_config("rank=2,fast,single_conv"), 0.88, 0)
  _fake_run(tmp_path / "one" / "01", cpac_mnist.get_config("dense,fast,single_conv"), 0.9, 0)
  rows = _report("cpac_rank_table.py", [tmp_path / "one"], tmp_path / "one_table")
  assert [r["paper (MNIST)"] for r in rows] == ["-", "97.94%"]
  assert rows[0]["conv weights"] == "30"  # R (8 + 3 + 3 + 1)
  mixed = _script(
    "cpac_rank_table.py",
    "--out",
    tmp_path / "mixed",
    "--workdir",
    tmp_path / "one",
    "--workdir",
    tmp_path / "cpac",
  )
  assert mixed.returncode != 0 and "mix one- and two-conv" in mixed.stderr

  points = sketch_mnist.sweep()
  for i in (0, 1, 6, 12):  # sketch, Tucker-2 + TT, conv2 alone sketched, l = 4
    config = sketch_mnist.get_config("method=dense")
    config.model.layers = points[i]["model.layers"]
    _fake_run(tmp_path / "sketch" / f"{i:02d}", config, 0.85 + i / 100, 10000 + i)
  rows = _report("sketch_curves.py", [tmp_path / "sketch"], tmp_path / "sketch_table")
  methods = {r["method"]: r for r in rows}
  assert set(methods) == {"sketch", "Tucker-2 + TT", "sketch, convs only", "sketch (l=4)"}
  assert methods["sketch"]["compressed-layer weights"] == "3,446"  # 550 + 2,080 + 816
  assert methods["sketch, convs only"]["compressed-layer weights"] == "550"
  assert methods["Tucker-2 + TT"]["test acc"] == "86.00 ± 0.00% (1 seed)"


@pytest.mark.slow
def test_adtn_table_lists_generators_and_their_sizes(tmp_path):
  from tnjax.configs import adtn_fc2_mnist, adtn_lenet5_mnist

  _fake_run(tmp_path / "adtn" / "fc2", adtn_fc2_mnist.get_config("layers=2"), 0.85, 11883)
  _fake_run(tmp_path / "adtn" / "lenet5_dense", adtn_lenet5_mnist.get_config("dense"), 0.9, 61706)
  shallow = adtn_fc2_mnist.get_config("shallow")  # the deep-vs-shallow TT row
  shallow.model.layers.hidden = dict(adtn_fc2_mnist.SHALLOW_COMPARISON[1])
  _fake_run(tmp_path / "adtn" / "fc2_tt", shallow, 0.88, 12522)
  rows = _report("adtn_table.py", [tmp_path / "adtn"], tmp_path / "adtn_table", (".md", ".csv"))
  assert [r["model"] for r in rows] == ["fc2", "fc2", "lenet5"]
  # TT 4x8x8x4 rank 3: 4*4*3 + 3*8*8*3 + 3*8*8*3 + 3*4*4 = 1,248 cores, plus the 1,024 biases.
  assert rows[1]["compressed layers"] == "hidden 4x8x8x4 -> 4x8x8x4 ranks 3-3-3"
  assert rows[1]["compressed layers' params / dense weights (with bias)"] == "2,272 / 1,049,600"
  rows = [rows[0], rows[2]]
  assert rows[0]["compressed layers"] == "hidden 1024x1024 ADTN Q=20 M=2 relu"
  # 16 M (Q-1) + 1 gate parameters and scale, plus the 1,024 biases.
  assert rows[0]["compressed layers' params / dense weights (with bias)"] == "1,633 / 1,049,600"
  assert rows[1]["compressed layers"] == "dense" and rows[1]["test acc"] == "90.00 ± 0.00% (1 seed)"


@pytest.mark.slow
def test_novikov_vgg_table_has_the_papers_compression_and_marks_missing_runs(tmp_path):
  rows = _report("novikov_vgg_table.py", [], tmp_path / "vgg", (".md", ".csv"))
  by_arch = {r["architecture"]: r for r in rows}
  assert by_arch["TT4 FC FC"]["FC6 compression"] == "50,972"
  assert by_arch["TT2 FC FC"]["FC6 compression"] == "194,622"
  assert by_arch["TT1 FC FC"]["FC6 compression"] == "713,614"
  assert by_arch["TT4 TT4 FC"]["compressed layers"] == "37,732"
  assert by_arch["MR50 FC FC"]["FC6 compression"] == "70"
  assert by_arch["TT4 FC FC"]["network compression"] == "3.89x"
  assert by_arch["TT4 TT4 FC"]["network compression"] == "7.35x"
  assert {r["our top-1 / top-5 error"] for r in rows} == {"missing"}


def test_archived_runs_restore_as_done_points(tmp_path):
  """experiments/archive_runs.py: finished and diverged runs' small files round-trip; no
  checkpoints travel."""
  runs = tmp_path / "runs"
  for name, files in {
    "00_a_seed=0": {"result.json": {"test_accuracy": 0.5}, "point.json": {"index": 0}},
    "01_b_seed=0": {"diverged.json": {"message": "nan"}, "config.json": {"seed": 0}},
    "02_c_seed=0": {"point.json": {"index": 2}},  # not finished: left out
  }.items():
    (runs / name / "checkpoints" / "8").mkdir(parents=True)
    for file, content in files.items():
      (runs / name / file).write_text(json.dumps(content))
  archive, restored = tmp_path / "runs.tar.gz", tmp_path / "restored"
  for command in (["pack", str(runs), str(archive)], ["restore", str(archive), str(restored)]):
    done = _script("archive_runs.py", *command)
    assert done.returncode == 0, done.stderr
  assert sorted(p.name for p in restored.iterdir()) == ["00_a_seed=0", "01_b_seed=0"]
  assert json.loads((restored / "00_a_seed=0" / "result.json").read_text())["test_accuracy"] == 0.5
  assert (restored / "01_b_seed=0" / "diverged.json").exists()
  assert not (restored / "00_a_seed=0" / "checkpoints").exists()


def test_pick_rate_takes_the_pilot_run_with_the_best_accuracy_and_refuses_an_unfinished_one(
  tmp_path,
):
  from tnjax.configs import adtn_fc2_mnist

  runs = []
  for rate, accuracy in ((1e-3, 0.80), (3e-3, 0.86), (1e-2, 0.84)):
    config = adtn_fc2_mnist.get_config("layers=4")
    with config.unlocked():
      config.schedule.learning_rate = rate
    runs.append(tmp_path / f"fc2_lr={rate}")
    _fake_run(str(runs[-1]), config, accuracy, 12491)

  picked = _script("pick_rate.py", *runs)
  assert picked.returncode == 0, picked.stderr[-2000:]
  assert float(picked.stdout) == 3e-3
  os.remove(runs[1] / "result.json")
  unfinished = _script("pick_rate.py", *runs)
  assert unfinished.returncode != 0 and "has no result.json" in unfinished.stderr


def test_seeds_group_across_harmless_and_added_fields_but_not_across_a_real_difference(tmp_path):
  sys.path.insert(0, os.path.join(REPO, "experiments"))
  try:
    import report_lib
  finally:
    sys.path.pop(0)
  base = tt_mnist.get_config().to_dict()
  older = json.loads(json.dumps(base))
  del older["pretrained"]["allow_random_frozen"]  # a run made before the field existed
  resumed = json.loads(json.dumps(base))
  resumed.update(seed=1)
  resumed["wandb"]["group"] = "sketch"
  other = json.loads(json.dumps(base))
  other["schedule"]["learning_rate"] = 0.5
  runs = [{"config": c, "dir": str(i)} for i, c in enumerate((older, resumed, other))]
  groups = report_lib.seed_groups(runs)
  assert [[r["dir"] for r in g] for g in groups] == [["0", "1"], ["2"]]
  # The same seed trained twice (a sweep rerun with --seeds into its workdir) counts once,
  # as its finished copy when only one has finished.
  runs = [{**r, "result": {"test_accuracy": 0.5}} for r in runs]
  runs[0]["result"] = None
  runs.append({"config": json.loads(json.dumps(base)), "dir": "3", "result": {"test_accuracy": 1}})
  groups = report_lib.seed_groups(runs)
  assert [[r["dir"] for r in g] for g in groups] == [["3", "1"], ["2"]]


def test_study_cost_counts_finished_runs_and_their_epoch_minutes(tmp_path):
  epochs = {"00_seed=0": (60, 120, 180), "00_seed=1": (600, 600, 600), "01_seed=0": (600,)}
  for name, seconds in epochs.items():
    _fake_run(tmp_path / "sweep" / name, tt_mnist.get_config(), 0.9, 1, seconds)
  os.remove(tmp_path / "sweep" / "01_seed=0" / "result.json")  # still running
  os.makedirs(tmp_path / "sweep" / "checkpoints")  # not a run: no config.json
  result = _script("study_cost.py", f"tt={tmp_path}/sweep/*@5", "--out", tmp_path / "cost.md")
  assert result.returncode == 0, result.stderr[-2000:]
  # Finished: 6 and 30 min (median 18); spent (6 + 30 + 10) / 60 h; left 3 runs x 18 min.
  assert "| tt | 2 of 5 | 18.0 | 0.8 | 0.9 |" in (tmp_path / "cost.md").read_text()
  bad = _script("study_cost.py", "tt=runs/*")
  assert bad.returncode != 0 and "is not NAME=PATTERN@PLANNED" in bad.stderr
  empty = _script("study_cost.py", f"tt={tmp_path}/sweep@5")  # the sweep, not its runs
  assert empty.returncode != 0 and "matches no run directory" in empty.stderr


def test_a_report_pointed_at_a_missing_or_empty_directory_or_without_matplotlib_is_one_line(
  tmp_path, monkeypatch
):
  (tmp_path / "empty").mkdir()  # or a sweep's parent: an empty table would overwrite a real one
  # compress_table reads its own layout; the others share report_lib.load_runs.
  for script, workdir in (
    ("compress_table.py", "empty"),
    ("novikov_fig1.py", "missing"),
    ("sketch_curves.py", "empty"),
  ):
    result = _script(script, "--workdir", tmp_path / workdir, "--out", tmp_path / "t")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and workdir in result.stderr
  assert not list(tmp_path.glob("t.*"))
  # Another study's runs, or runs none of which has finished: one line, not a KeyError.
  _fake_run(tmp_path / "tt" / "00_a", tt_mnist.get_config(), 0.9, 1000)
  result = _script("sketch_curves.py", "--workdir", tmp_path / "tt", "--out", tmp_path / "t")
  assert (
    result.returncode == 2 and "lack config field 'fc2': they are not this report" in result.stderr
  )
  os.remove(tmp_path / "tt" / "00_a" / "result.json")
  result = _script("novikov_fig1.py", "--workdir", tmp_path / "tt", "--out", tmp_path / "t")
  assert result.returncode == 2 and "none of the 1 runs under" in result.stderr
  monkeypatch.syspath_prepend(os.path.join(REPO, "experiments"))
  import report_lib  # pylint: disable=g-import-not-at-top

  import novikov_vgg_table  # pylint: disable=g-import-not-at-top
  import study_cost  # pylint: disable=g-import-not-at-top

  _fake_run(tmp_path / "tt" / "01_b", tt_mnist.get_config(), 0.9, 1000)  # not a VGG layout
  with pytest.raises(ValueError, match=r"none of the 1 finished runs given has one of the"):
    novikov_vgg_table.run_accuracies([str(tmp_path / "tt")])
  with pytest.raises(ValueError, match=r"study_cost: 'sketch' is not NAME=PATTERN@PLANNED"):
    study_cost.parse_study("sketch")
  monkeypatch.setitem(sys.modules, "matplotlib", None)  # the core install has none
  with pytest.raises(
    ValueError, match=r"figures needs matplotlib.*pip install 'tnjax\[experiments\]'"
  ):
    report_lib.pyplot()
