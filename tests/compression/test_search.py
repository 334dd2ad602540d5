"""Sizes searched on validation data (tnjax.compression.search): an exact allocation, a
synthetic model whose best allocation is known, the accuracy-drop bisection, latency,
budgets checked in one line, and a search that resumes after SIGKILL."""

import itertools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import tnjax
from tnjax import errors
from tnjax.compression import plan as plan_lib
from tnjax.compression import rank_search as search
from tnjax.compression import budget as budget_lib
from tnjax.compression import sensitivity

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class TwoPaths(nnx.Module):
  """y = strong(x) + 0.01 weak(x): an error in `weak` costs 10^4 times less than in `strong`,
  so every weight a budget allows belongs in `strong` first."""

  def __init__(self, rngs):
    self.strong = nnx.Linear(32, 32, rngs=rngs)
    self.weak = nnx.Linear(32, 32, rngs=rngs)
    for index, layer in enumerate((self.strong, self.weak)):  # singular values 0.75^k
      u, _, vt = np.linalg.svd(np.random.default_rng(index).normal(size=(32, 32)))
      layer.kernel[...] = jnp.asarray((u * 0.75 ** np.arange(32)) @ vt, jnp.float32)

  def __call__(self, x):
    return self.strong(x) + 0.01 * self.weak(x)


PLAN = {"strong": {"kind": "lowrank"}, "weak": {"kind": "lowrank"}}


def _task(model, finetunes=None):
  x = jax.random.normal(jax.random.key(1), (256, 32))
  target = model(x)
  labels = jnp.argmax(target, -1)

  def finetune(m):
    if finetunes is not None:
      finetunes.append(1)
    return m

  return search.Validation(
    loss=lambda m: float(jnp.mean((m(x) - target) ** 2)),
    accuracy=lambda m: float(jnp.mean(jnp.argmax(m(x), -1) == labels)),
    finetune=finetune,
    example_input=x[:4],
    finetune_epochs=1,
  )


@pytest.fixture(scope="module")
def model():
  return TwoPaths(nnx.Rngs(0))


@pytest.mark.parametrize("seed", range(4))
def test_the_allocation_is_the_exact_knapsack_optimum(seed):
  rng = np.random.default_rng(seed)
  table = {
    f"layer{i}": [
      sensitivity.Candidate({"kind": "lowrank", "rank": r}, int(w), float(loss))
      for r, (w, loss) in enumerate(
        zip(sorted(rng.integers(10, 500, 5)), sorted(rng.random(5), reverse=True)), 1
      )
    ]
    for i in range(4)
  }
  allowed = 900
  best = min(
    (c for c in itertools.product(*table.values()) if sum(x.weights for x in c) <= allowed),
    key=lambda c: sum(x.loss for x in c),
  )
  chosen = sensitivity.allocate(table, allowed)
  assert sum(c.weights for c in chosen.values()) <= allowed
  assert sum(c.loss for c in chosen.values()) == pytest.approx(sum(x.loss for x in best))
  with pytest.raises(errors.UserError, match="no sizes of these formats fit 10 weights"):
    sensitivity.allocate(table, 10)


def test_sensitivity_gives_the_weights_to_the_layer_that_matters(model):
  validation = _task(model)
  small, rows = tnjax.compress(
    model, PLAN, budget={"ratio": 2, "allocate": "sensitivity"}, validation=validation
  )
  ranks = {r["name"]: r["spec"]["rank"] for r in rows}
  entries = {e.name: e for e in plan_lib.resolve_plan(model, PLAN)}
  weight = jnp.asarray(model.strong.kernel[...])
  ladder = [s["rank"] for s in sensitivity.ladder_specs(entries["strong"], weight)]
  assert ranks["strong"] == max(ladder)  # the largest ladder size (EVBMF's rank 11 here)
  assert ranks["weak"] < ranks["strong"]
  assert sum(r["weights_after"] for r in rows) <= 2 * 32 * 32 / 2
  equal, equal_rows = tnjax.compress(model, PLAN, budget={"ratio": 2})
  assert sum(r["weights_after"] for r in equal_rows) <= 2 * 32 * 32 / 2
  assert validation.loss(small) < 0.8 * validation.loss(equal)  # 0.25 against 0.35 here


def test_accuracy_drop_returns_the_smallest_front_model_within_the_drop(model, tmp_path):
  finetunes = []
  validation = _task(model, finetunes)
  result = search.search(model, PLAN, {"accuracy_drop": 20.0}, validation, workdir=tmp_path)
  assert result.source["accuracy"] == 1.0
  accuracy = lambda p: validation.accuracy(  # noqa: E731
    tnjax.compress(model, p["specs"])[0]
  )
  assert result.chosen["met"] and accuracy(result.chosen) >= 0.80
  position = [p["specs"] for p in result.front].index(result.chosen["specs"])
  if position > 0:  # the bisection's contract: the next smaller front model misses
    assert accuracy(result.front[position - 1]) < 0.80
  weights = [p["weights"] for p in result.front]
  assert weights == sorted(weights) and len(finetunes) == result.finetunes
  assert len(finetunes) <= 2 + int(np.ceil(np.log2(len(weights))))
  assert sum(r["weights_after"] for r in result.rows) == result.chosen["weights"]
  report = (tmp_path / "search.md").read_text()
  assert f"Search cost: {result.finetunes} fine-tune(s) ({result.finetunes} epochs)" in report
  # The record alone gives the same front, with what was measured of each point.
  recorded = search.recorded_front(json.loads((tmp_path / "search.json").read_text()))
  assert recorded == result.front and sum("accuracy" in p for p in recorded) == len(finetunes)
  # Rerun: every measurement is reused, nothing is fine-tuned again.
  again = search.search(
    model, PLAN, {"accuracy_drop": 20.0}, _task(model, finetunes), workdir=tmp_path
  )
  assert again.chosen["specs"] == result.chosen["specs"] and len(finetunes) == result.finetunes
  with pytest.raises(errors.UserError, match="holds a search for plan .* give a new workdir"):
    search.search(model, PLAN, {"accuracy_drop": 1.0}, validation, workdir=tmp_path)


def test_by_flops_orders_the_front_by_xla_flop_count(model):
  result = search.search(
    model, PLAN, {"accuracy_drop": 5.0, "by": "flops"}, _task(model), quiet=True
  )
  counts = [p["flops"] for p in result.front]
  assert all(c > 0 for c in counts) and result.chosen["flops"] in counts
  dense = 2 * 2 * 32 * 32  # two 32x32 products on one example, 2 FLOPs per multiply-add
  assert all(c < 2 * dense for c in counts)


def test_latency_budget_keeps_the_chosen_model_within_it(model):
  result = search.search(model, PLAN, {"latency_ms": 1000.0}, _task(model), quiet=True)
  timed = [p["latency_ms_batch1"] for p in result.front]
  assert all(t > 0 for t in timed) and result.chosen["latency_ms_batch1"] <= 1000.0
  largest = sorted(result.front, key=lambda p: -p["weights"])[:2]
  assert result.chosen["specs"] in [p["specs"] for p in largest]
  with pytest.raises(errors.UserError, match=r"latency_ms=1e-06 at batch 1: the fastest"):
    search.search(model, PLAN, {"latency_ms": 1e-6}, _task(model), quiet=True)


@pytest.mark.parametrize(
  "budget, message",
  [
    ({"params": 100, "ratio": 2}, r"a budget is .*got"),
    ({"ratio": 2, "allocate": "best"}, r"allocate='best' must be one of"),
    ({"accuracy_drop": -1}, r"accuracy_drop=-1 is not a number of points >= 0"),
    ({"accuracy_drop": 1, "by": "time"}, r"by='time' must be one of"),
    ({"latency_ms": 0}, r"latency_ms=0 is not a number of milliseconds"),
    ({"latency_ms": 2, "batch": 0}, r"batch=0 must be a whole number >= 1"),
    ({"accuracy_drop": 1, "batch": 2}, r"remove \['batch'\]"),
  ],
)
def test_budgets_are_checked_in_one_line(budget, message):
  with pytest.raises(errors.UserError, match=message):
    budget_lib.check_budget(budget)


@pytest.mark.parametrize("allocate", ["equal_error", "sensitivity"])
def test_a_budget_refuses_a_size_it_would_override(model, allocate):
  plan = {"strong": {"kind": "lowrank", "rank": 3}, "weak": {"kind": "lowrank"}}
  with pytest.raises(errors.UserError, match=r"strong: a budget sizes .* remove rank=3"):
    tnjax.compress(model, plan, budget={"ratio": 2, "allocate": allocate}, validation=_task(model))


def test_a_search_never_grows_layers_that_are_already_compressed(model):
  small, _ = tnjax.compress(
    model, {"strong": {"kind": "lowrank", "rank": 2}, "weak": {"kind": "lowrank", "rank": 2}}
  )
  now = small.strong.weight_params + small.weak.weight_params  # 256 of the dense 2,048
  validation = _task(small)
  with pytest.raises(
    errors.UserError, match=rf"allows the planned layers 1,024 weights, more than the {now}"
  ):
    search.search(small, PLAN, {"ratio": 2, "allocate": "sensitivity"}, validation, quiet=True)
  # A measured budget chooses only among candidates no larger than the layers are now.
  result = search.search(small, PLAN, {"accuracy_drop": 100.0}, validation, quiet=True)
  assert result.front and all(p["weights"] <= now for p in result.front)
  assert result.chosen["weights"] <= now


def test_a_search_workdir_refuses_another_models_search(model, tmp_path):
  budget = {"ratio": 2, "allocate": "sensitivity"}
  search.search(model, PLAN, budget, _task(model), workdir=str(tmp_path), quiet=True)
  other = TwoPaths(nnx.Rngs(0))
  other.strong.kernel[...] = 2 * other.strong.kernel[...]
  with pytest.raises(
    errors.UserError, match=r"holds a search of another model \(its layer 'strong'"
  ):
    search.search(other, PLAN, budget, _task(other), workdir=str(tmp_path), quiet=True)
  # Another model with the same norms (two seeds' FC-2 sources agree to 0.1%): its rows
  # permuted, every layer's norm is exactly the same.
  same_norms = TwoPaths(nnx.Rngs(0))
  same_norms.weak.kernel[...] = same_norms.weak.kernel[...][::-1]
  with pytest.raises(errors.UserError, match=r"holds a search of another model \(its layer 'weak'"):
    search.search(same_norms, PLAN, budget, _task(same_norms), workdir=str(tmp_path), quiet=True)
  again = search.search(model, PLAN, budget, _task(model), workdir=str(tmp_path), quiet=True)
  assert again.chosen["weights"] <= 1024


def test_a_resumed_search_refuses_other_measurement_settings(model, tmp_path):
  budget, workdir = {"ratio": 2, "allocate": "sensitivity"}, str(tmp_path)
  validation = _task(model)
  validation.settings = {"validation_examples": 512, "search_finetune_epochs": 1}
  search.search(model, PLAN, budget, validation, workdir=workdir, quiet=True)
  validation.settings = {"validation_examples": 256, "search_finetune_epochs": 1}
  with pytest.raises(
    errors.UserError, match=r"measured with --validation_examples=512 \(now 256\); rerun it"
  ):
    search.search(model, PLAN, budget, validation, workdir=workdir, quiet=True)


def test_a_measured_budget_without_validation_data_says_what_to_give(model):
  with pytest.raises(errors.UserError, match=r"give validation=Validation\(\.\.\.\) with loss"):
    tnjax.compress(model, PLAN, budget={"ratio": 2, "allocate": "sensitivity"})
  with pytest.raises(errors.UserError, match=r"missing: accuracy, finetune"):
    tnjax.compress(
      model, PLAN, budget={"accuracy_drop": 1}, validation=search.Validation(loss=lambda m: 0.0)
    )


_KILLED_SEARCH = """
import os, signal, sys
sys.path.insert(0, {here!r})
from flax import nnx
import test_search as t
from tnjax.compression import rank_search as search
model = t.TwoPaths(nnx.Rngs(0))
finetunes = []
validation = t._task(model, finetunes)
kill_at = int(sys.argv[2])
plain = validation.finetune
def finetune(m):
  if len(finetunes) + 1 == kill_at:
    os.kill(os.getpid(), signal.SIGKILL)
  return plain(m)
validation.finetune = finetune
result = search.search(model, t.PLAN, {{"accuracy_drop": 20.0}}, validation, workdir=sys.argv[1])
print("RESULT", len(finetunes), result.chosen["weights"], result.finetunes)
"""


@pytest.mark.slow  # two searches in fresh processes
def test_a_killed_search_resumes_where_it_stopped(tmp_path):
  script = _KILLED_SEARCH.format(here=HERE)
  env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}

  def run(workdir, kill_at):
    return subprocess.run(
      [sys.executable, "-c", script, str(workdir), str(kill_at)],
      capture_output=True,
      text=True,
      env=env,
      timeout=300,
    )

  finetunes = []  # the same search, uninterrupted, in this process
  whole = search.search(
    TwoPaths(nnx.Rngs(0)),
    PLAN,
    {"accuracy_drop": 20.0},
    _task(TwoPaths(nnx.Rngs(0)), finetunes),
    workdir=tmp_path / "whole",
    quiet=True,
  )
  total, weights = str(len(finetunes)), str(whole.chosen["weights"])
  assert int(total) >= 3
  killed = run(tmp_path / "killed", 3)  # dies inside its third fine-tune
  assert killed.returncode == -9
  saved = json.loads((tmp_path / "killed" / "search.json").read_text())
  assert sum("accuracy" in m for m in saved["measured"].values()) == 2
  resumed = run(tmp_path / "killed", 0)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  now, again, finetunes = resumed.stdout.split("RESULT ")[1].split()
  assert (again, finetunes) == (weights, total)  # the same choice, the same total cost
  assert int(now) == int(total) - 2  # the two finished fine-tunes were not run again


def test_a_linen_model_takes_weight_budgets_only():
  import flax.linen as linen  # pylint: disable=g-import-not-at-top

  from tnjax.compression import compress_linen  # pylint: disable=g-import-not-at-top

  module = linen.Dense(16)
  variables = module.init(jax.random.key(0), jnp.ones((1, 32)))
  with pytest.raises(
    errors.UserError, match=r"compress_linen shares .* \(tnjax.compression.search\)"
  ):
    compress_linen(
      module,
      variables,
      {"*": {"kind": "lowrank"}},
      jnp.ones((1, 32)),
      budget={"accuracy_drop": 1.0},
    )


def test_a_search_stopped_while_scoring_layers_keeps_the_layers_it_scored(model, tmp_path):
  budget, calls = {"ratio": 2, "allocate": "sensitivity"}, []
  task = _task(model)
  scored = task.loss

  def stopped_in_the_second_layer(m):
    calls.append(1)
    if len(calls) > len(sensitivity.ladder_specs(*_first_entry(model))) + 1:
      raise KeyboardInterrupt  # Ctrl-C while the second layer is being scored
    return scored(m)

  task.loss = stopped_in_the_second_layer
  with pytest.raises(KeyboardInterrupt):
    search.search(model, PLAN, budget, task, workdir=str(tmp_path), quiet=True)
  saved = json.loads((tmp_path / "search.json").read_text())
  assert list(saved["scored"]) == ["strong"]
  task.loss, calls = scored, []
  counted = lambda m: calls.append(1) or scored(m)  # noqa: E731
  task.loss = counted
  resumed = search.search(model, PLAN, budget, task, workdir=str(tmp_path), quiet=True)
  whole = search.search(model, PLAN, budget, _task(model), quiet=True)
  assert resumed.chosen["specs"] == whole.chosen["specs"]
  # Only the second layer's ladder (and the source) was scored again, not the first's.
  assert len(calls) == len(sensitivity.ladder_specs(*_first_entry(model, "weak"))) + 1


def _first_entry(model, name="strong"):
  from tnjax.compression.plan import resolve_plan  # pylint: disable=g-import-not-at-top

  entry = next(e for e in resolve_plan(model, PLAN) if e.name == name)
  return entry, jnp.asarray(entry.layer.to_dense())
