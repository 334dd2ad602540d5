"""Compressing trained runs: exact reconstructions, sizes from error / ratio / budget, the
program end to end, loading any run back, and plans that are refused in one line."""

import json

import numpy as np
import pytest
from flax import nnx

import jax
import jax.numpy as jnp

from tnjax import errors, models
from tnjax.compression import compress_model, load, resolve_plan
from tnjax.compression.search_status import search_status
from tnjax.compression.evaluate_export import evaluate_run
from tnjax.compression.workflow import compress_run


import run_helpers as h


def _lenet(seed=0):
  model = models.build_model({"name": "lenet5"}, (28, 28, 1), 10, rngs=nnx.Rngs(seed))
  model.eval()
  return model


def _weights(model, name):
  return np.asarray(getattr(model, name).to_dense(), np.float64)


def test_full_rank_plans_reproduce_the_source_model_in_float64(x64):
  model = _lenet()
  state = nnx.state(model, nnx.Param)
  nnx.update(model, jax.tree.map(lambda x: x.astype(jnp.float64), state))  # a float64 source
  full = {  # full rank stores more than dense: the plan must say it may
    "conv2": {"kind": "tucker", "in_rank": 6, "out_rank": 16, "allow_growth": True},
    "fc1": {
      "kind": "tt",
      "ranks": (8, 100),
      "in_shape": (4, 10, 10),
      "out_shape": (2, 6, 10),
      "allow_growth": True,
    },
    "fc2": {"kind": "lowrank", "rank": 84, "allow_growth": True},
  }
  small, rows = compress_model(model, full)
  assert [r["name"] for r in rows] == ["conv2", "fc1", "fc2"]
  assert all(r["relative_error"] < 1e-9 for r in rows), rows
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 28, 28, 1)))
  np.testing.assert_allclose(np.asarray(small(x)), np.asarray(model(x)), rtol=1e-8, atol=1e-9)
  np.testing.assert_array_equal(small.conv1.kernel[...], model.conv1.kernel[...])  # copied


def test_truncated_layers_reconstruct_to_their_stated_error():
  model = _lenet()
  small, rows = compress_model(
    # At 40% error fc1's TT-ranks store more than its dense weight: allowed here, refused
    # without allow_growth (tests/faults).
    model,
    {
      "fc1": {"kind": "tt", "error": 0.4, "allow_growth": True},
      "fc2": {"kind": "lowrank", "error": 0.5},
    },
  )
  for row in rows:
    error = np.linalg.norm(_weights(small, row["name"]) - _weights(model, row["name"]))
    error /= np.linalg.norm(_weights(model, row["name"]))
    assert error == pytest.approx(row["relative_error"], rel=1e-4)
  fc1, fc2 = rows
  assert fc1["relative_error"] <= 0.4 and fc2["relative_error"] <= 0.5
  rank = fc2["spec"]["rank"]  # the smallest rank within the error
  _, one_less = compress_model(model, {"fc2": {"kind": "lowrank", "rank": rank - 1}})
  assert one_less[0]["relative_error"] > 0.5


def test_a_ratio_gives_the_largest_size_within_it_and_a_budget_is_shared_out():
  model = _lenet()
  _, rows = compress_model(model, {"fc*": {"kind": "cp", "ratio": 20}}, fit=False)  # sizes only
  for row in rows:
    assert row["weights_before"] / row["weights_after"] >= 20
    bigger = dict(row["spec"], rank=row["spec"]["rank"] + 1)
    _, more = compress_model(model, {row["name"]: bigger}, fit=False)  # its size, not its fit
    assert row["weights_before"] / more[0]["weights_after"] < 20
  plan = {"fc1": {"kind": "lowrank"}, "fc2": {"kind": "lowrank"}}
  _, shared = compress_model(model, plan, budget={"ratio": 10})
  dense = sum(r["weights_before"] for r in shared)
  assert sum(r["weights_after"] for r in shared) <= dense / 10
  errors_ = [r["relative_error"] for r in shared]
  assert max(errors_) - min(errors_) < 0.1  # one error for all (up to whole ranks)


@pytest.mark.parametrize(
  "plan, message",
  [
    ({"fc9": {"kind": "tt"}}, r"'fc9' matches no layer; the model's layers are conv1, conv2"),
    ({"fc1": {"kind": "tucker"}}, r"format 'tucker' has no dense layer"),
    ({"fc1": {"ranks": 4}}, r"must be a dict with a 'kind' key"),
    ({"fc1": {"kind": "tt", "error": 0.1, "ratio": 4}}, r"give one of error, ratio, not 2"),
    ({"fc1": {"kind": "adtn", "error": 0.1}}, r"adtn weights are trained, not fitted"),
    ({"fc1": {"kind": "lowrank", "ratio": 0.5}}, r"must be a number above 1"),
    ({"fc2": {"kind": "lowrank", "rank": 100}}, r"lowrank rank=100 is above what is useful .*84"),
    ({"conv2": {"kind": "tucker", "in_rank": 7, "out_rank": 4}}, r"in_rank=7 is above .*6"),
    ({"fc2": {"kind": "lowrank", "rank": 60}}, r"fc2: lowrank at rank=60 stores 12,240 .* 10,080"),
    ({"fc2": {"kind": "cp", "rank": 5000}}, r"cp rank=5000 is above what is useful"),
    (
      {"fc2": {"kind": "lowrank", "error": 0.0}},
      r"error=0 cannot be met by lowrank: at rank=\d+, the largest size that compresses",
    ),
    ({"fc2": {"kind": "lowrank", "rank": 8, "allow_growth": 1}}, r"allow_growth=1 must be True"),
  ],
)
def test_bad_plans_are_one_line_errors(plan, message):  # fc2: 120 -> 84, 10,080 weights
  with pytest.raises(errors.UserError, match=message):
    resolve_plan(_lenet(), plan)
    compress_model(_lenet(), plan)


def _trained_source_and_plan(tmp_path):
  """A small trained TT FC-2 run and a plan compressing its hidden layer further: low rank
  4 stores 8,192 weights, fewer than the TT layer's 8,448 (a larger rank is refused)."""
  source, plan = tmp_path / "source", tmp_path / "plan.py"
  h.reference_run(source)
  plan.write_text("def get_plan(arg=None):\n  return {'hidden': {'kind': 'lowrank', 'rank': 4}}\n")
  return source, plan


@pytest.mark.slow
def test_the_program_compresses_fine_tunes_resumes_and_loads(tmp_path):
  source, plan = _trained_source_and_plan(tmp_path)
  with pytest.raises(errors.UserError, match="--from and --workdir are both"):
    compress_run(str(source), str(plan), str(source))
  target = tmp_path / "small"
  report = compress_run(str(source), str(plan), str(target), finetune_epochs=2)
  assert report["layers"][0]["format"] == "lowrank" and report["layers"][0]["weights_after"] == (
    2 * 1024 * 4
  )
  assert 0 <= report["converted_accuracy"] <= 1 and "finetuned_accuracy" in report
  assert (target / "compress.md").exists() and (target / "result.json").exists()
  model, config = load(str(target))
  assert config.model.layers.hidden.kind == "lowrank" and config.num_epochs == 2
  assert evaluate_run(str(target))["test_accuracy"] == pytest.approx(report["finetuned_accuracy"])
  # A rerun resumes (nothing to do) instead of converting again.
  again = compress_run(str(source), str(plan), str(target), finetune_epochs=2)
  assert again["finetuned_accuracy"] == report["finetuned_accuracy"]
  # The plan is recognised by what it says, not by how its path is written ...
  copy = tmp_path / "same_plan.py"
  copy.write_text(plan.read_text())
  compress_run(str(source), str(copy), str(target), finetune_epochs=2)
  # ... so an edited plan file is another plan, refused before anything is touched.
  plan.write_text(plan.read_text().replace("'rank': 4", "'rank': 2"))
  with pytest.raises(errors.UserError, match=r"holds the compression by another plan .*'rank': 4"):
    compress_run(str(source), str(plan), str(target), finetune_epochs=2)
  # --merge: the dense copy computes what the compressed model computes.
  merged = tmp_path / "merged.npz"
  evaluate_run(str(target), merge=str(merged))
  arrays = np.load(merged)
  np.testing.assert_allclose(arrays["hidden/kernel"], model.hidden.to_dense(), rtol=1e-6)
  # A source continued under another config since: the rerun blames the source, not flags.
  saved = json.loads((source / "config.json").read_text())
  saved["schedule"]["name"] = "constant"
  (source / "config.json").write_text(json.dumps(saved))
  with pytest.raises(
    errors.UserError, match=r"the source run has changed since \(schedule.name: '\w+' -> 'constant'"
  ):
    compress_run(str(source), str(copy), str(target), finetune_epochs=2)


@pytest.mark.slow
def test_a_compressed_run_resumes_after_sigkill_like_any_run(tmp_path):
  source, plan = _trained_source_and_plan(tmp_path)
  full, killed = tmp_path / "full", tmp_path / "killed"
  epochs = ["--finetune_epochs", "4"]
  args = ["--from", str(source), "--plan", str(plan)]
  done = h.run(h.cli("tnjax.compress", *args, "--workdir", str(full), *epochs))
  assert done.returncode == 0, done.stderr[-2000:]
  process = h.start(h.cli("tnjax.compress", *args, "--workdir", str(killed), *epochs))
  checkpoints = killed / "checkpoints"
  h.wait_for(
    lambda: checkpoints.exists() and any(d.name.isdigit() for d in checkpoints.iterdir()),
    what="a finished checkpoint",
  )
  process.kill()
  process.wait()
  resumed = h.run(h.cli("tnjax.compress", *args, "--workdir", str(killed), *epochs))
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert "Resumed from" in resumed.stdout
  h.assert_same_params(h.flat_params(full / "checkpoints"), h.flat_params(killed / "checkpoints"))


def test_load_round_trips_every_model_of_the_zoo(tmp_path):
  """Every model class: build, save as a run's checkpoint would, load, same outputs."""
  from tnjax.training import checkpoint, optim  # pylint: disable=g-import-not-at-top
  from tnjax.configs import (  # pylint: disable=g-import-not-at-top
    adtn_lenet5_mnist,
    cpac_mnist,
    sketch_mnist,
    tt_cifar10,
    tt_mnist,
    tt_wide_cifar10,
  )

  configs = {
    "fc2": tt_mnist.get_config("synthetic,runlocal"),
    "cpac": cpac_mnist.get_config("synthetic,runlocal"),
    "lenet": sketch_mnist.get_config("synthetic,runlocal"),
    "adtn": adtn_lenet5_mnist.get_config("synthetic,runlocal,layers=2"),  # M: compile time only
    "novikov": tt_cifar10.get_config("synthetic,runlocal"),
    "wide": tt_wide_cifar10.get_config("synthetic,runlocal"),
  }
  for name, config in configs.items():
    from tnjax import data as data_lib  # pylint: disable=g-import-not-at-top

    image_shape, classes = data_lib.nominal_shape(config.data)
    model = models.build_model(config.model, image_shape, classes, rngs=nnx.Rngs(3))
    schedule = optim.make_schedule(config.schedule, 10, config.num_epochs)
    optimizer = nnx.Optimizer(
      model, optim.make_optimizer(config.optimizer, schedule), wrt=nnx.Param
    )
    _, state = nnx.split({"model": model, "optimizer": optimizer})
    workdir = tmp_path / name
    saver = checkpoint.Checkpointer(workdir / "checkpoints", async_save=False)
    saver.save(1, state, config.to_dict())
    saver.close()
    loaded, loaded_config = load(str(workdir))
    assert loaded_config.model.name == config.model.name
    model.eval()
    x = jax.random.normal(jax.random.key(0), (2,) + tuple(image_shape))
    np.testing.assert_allclose(
      np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6, err_msg=name
    )


def test_a_slow_fit_says_what_it_is_doing(capsys):
  import time  # pylint: disable=g-import-not-at-top

  from tnjax.compression.convert import _said_if_slow  # pylint: disable=g-import-not-at-top

  with _said_if_slow("fitting fc1 (cp rank=5000)", first=0.05, every=0.05):
    time.sleep(0.2)
  err = capsys.readouterr().err  # on stderr, beside the progress bars
  assert "fitting fc1 (cp rank=5000): running for 0 s" in err and "done in 0 s" in err
  with _said_if_slow("fitting fc2", first=5.0):
    pass
  assert capsys.readouterr().err == ""  # a quick fit stays quiet


@pytest.mark.slow
def test_a_measured_budget_searches_on_held_out_examples_and_resumes(tmp_path):
  from tnjax.compression import run_search  # pylint: disable=g-import-not-at-top

  source = tmp_path / "source"
  trained_on = 384  # of the 512 synthetic training examples: 128 the source never saw
  from tnjax.training import trainer  # pylint: disable=g-import-not-at-top

  trainer.train(h.small_config(**{"data.max_train_examples": trained_on}), str(source))
  plan = tmp_path / "plan.py"
  plan.write_text(
    "def get_plan(arg=None):\n  return {'layers': {'output': {'kind': 'lowrank'}}, "
    "'budget': {'accuracy_drop': 30}}\n"
  )
  target = tmp_path / "small"
  args = dict(finetune_epochs=0, search_finetune_epochs=1, validation_examples=128)
  report = compress_run(str(source), str(plan), str(target), **args)
  search_dir = target / "search"
  record = json.loads((search_dir / "search.json").read_text())
  tried = [m["accuracy"] for m in record["measured"].values() if "accuracy" in m]
  runs = sorted(p.name for p in search_dir.glob("finetune_*"))
  assert len(tried) == len(runs) >= 1
  evaluated = []
  for run in runs:  # every fine-tune is an ordinary, finished run on the first 384 examples,
    config = json.loads((search_dir / run / "config.json").read_text())  # evaluated on the
    assert config["data"]["max_train_examples"] == trained_on  # 128 held out, never on test
    assert config["data"]["held_out_eval"] == 128
    evaluated.append(json.loads((search_dir / run / "result.json").read_text())["test_accuracy"])
  np.testing.assert_allclose(sorted(evaluated), sorted(tried), atol=1e-6)
  status = search_status(str(target)).splitlines()  # --status: how far the search is
  assert status[0].startswith("search: budget {'accuracy_drop': 30}")
  assert status[4] == f"finished: {search_dir / 'search.md'}"
  assert status[-1] == f"{len(runs)} runs: {len(runs)} finished." and "val acc" in status[5]
  need = record["source"]["accuracy"] - 0.30
  chosen = report["layers"][0]["weights_after"]
  # The status names what the search chooses: the smallest candidate within the drop.
  assert f"candidates fine-tuned: {len(runs)}; smallest within the drop so far: " in status[3]
  assert status[3].endswith(f" at {chosen:,} weights")
  assert "Target met." in (search_dir / "search.md").read_text()
  assert any(a >= need for a in tried) and report["layers"][0]["format"] == "lowrank"
  assert chosen < 1024 * 10
  # The validation split: the 128 training examples right after the source's 384.
  images, labels, keep, seen = run_search.held_out(
    h.small_config(**{"data.max_train_examples": trained_on}), 128
  )
  assert (keep, seen, len(labels)) == (trained_on, False, 128)
  _, _, keep_all, seen_all = run_search.held_out(h.small_config(), 128)
  assert (keep_all, seen_all) == (512 - 128, True)
  # Rerun: the report is there, nothing is searched or fine-tuned again.
  again = compress_run(str(source), str(plan), str(target), **args)
  assert again["layers"] == report["layers"]
  assert sorted(p.name for p in search_dir.glob("finetune_*")) == runs


@pytest.mark.slow
def test_evaluate_and_export_say_when_a_run_is_not_finished(tmp_path, capsys):
  source, plan = _trained_source_and_plan(tmp_path)
  converted = tmp_path / "converted"
  compress_run(str(source), str(plan), str(converted))  # --finetune_epochs 0
  capsys.readouterr()
  evaluate_run(str(converted))
  assert "is converted, not fine-tuned: these are the converted weights" in (
    capsys.readouterr().err
  )
  (source / "result.json").unlink()  # as if the run had stopped after its last checkpoint
  evaluate_run(str(source))
  assert "is not finished: these are the weights of its checkpoint at step 256" in (
    capsys.readouterr().err
  )


@pytest.mark.slow
def test_a_fine_tune_on_other_examples_keeps_the_sources_fitted_mean_image(tmp_path):
  source, plan = _trained_source_and_plan(tmp_path)
  target = tmp_path / "small"
  compress_run(
    str(source),
    str(plan),
    str(target),
    finetune_epochs=1,
    # Fewer examples: another mean if refitted; 37 test images: the source is measured
    # under the data settings its fine-tune gets, as the fine-tuned accuracy is.
    overrides={"data.max_train_examples": "256", "data.max_test_examples": "37"},
  )
  report = json.loads((target / "compress.json").read_text())
  accuracies = [report[k] for k in ("source_accuracy", "converted_accuracy", "finetuned_accuracy")]
  assert all(abs(37 * a - round(37 * a)) < 1e-6 for a in accuracies), accuracies
  assert any(0 < a < 1 for a in accuracies), accuracies  # so that 37 images are told apart
  mean = np.load(source / "preprocessing.npz")["mean_image"]
  assert json.loads((target / "config.json").read_text())["data"]["max_train_examples"] == 256
  np.testing.assert_array_equal(np.load(target / "preprocessing.npz")["mean_image"], mean)
