"""The fault suite: every program, every user mistake the issues list, one row each.

Each row runs a program (compress, evaluate, export, sweep, train) with one bad input and
asserts exit code 2, exactly one line on stderr naming the problem, no traceback, and
watched workdirs byte-identical (every file hashed before and after the row; .lock, the
run lock a trainer rewrites, aside). A new flag or field joins the suite by a line here.

The programs run in one process each (program_driver.py), so a row costs no JAX import.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tnjax.compression.workflow import compress_run
from tnjax.configs import dense_mnist
from tnjax.training import trainer

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CONFIG = os.path.join(REPO, "configs", "dense_mnist.py") + ":synthetic,runlocal"
SWEEP_CONFIG = os.path.join(REPO, "configs", "tt_mnist.py") + ":synthetic,runlocal"

PLANS = {
  "none.py": "def get_plan(arg=None):\n  return None\n",
  "float_arg.py": "def get_plan(arg=None):\n  error = float(arg)\n"
  "  return {'hidden': {'kind': 'lowrank', 'error': error}}\n",
  "unknown_field.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'tt', 'rnks': 8}}\n",
  "rank0.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'lowrank', 'rank': 0}}\n",
  "rank_text.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'lowrank', 'rank': '8'}}\n",
  "error_text.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'lowrank', 'error': 'x'}}\n",
  "budget0.py": "def get_plan(arg=None):\n  return {'layers': {'hidden': {'kind': 'lowrank'}}, "
  "'budget': 0}\n",
  "budget_list.py": "def get_plan(arg=None):\n  return {'layers': {'hidden': {'kind': 'lowrank'}}, "
  "'budget': [100]}\n",
  "budget_key.py": "def get_plan(arg=None):\n  return {'layers': {'hidden': {'kind': 'lowrank'}}, "
  "'budget': {'weights': 100}}\n",
  "budget_rank.py": "def get_plan(arg=None):\n  return {'layers': {'hidden': {'kind': 'lowrank', "
  "'rank': 8}}, 'budget': {'ratio': 4}}\n",
  "budget_drop.py": "def get_plan(arg=None):\n  return {'layers': {'hidden': {'kind': 'lowrank'}}, "
  "'budget': {'accuracy_drop': -1}}\n",
  "budget_no_layers.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'lowrank'}, "
  "'budget': {'ratio': 4}}\n",
  "extra_key.py": "def get_plan(arg=None):\n  return {'layers': {'hidden': {'kind': 'lowrank'}}, "
  "'budgt': {'ratio': 4}}\n",
  "no_arg.py": "def get_plan():\n  return {'hidden': {'kind': 'lowrank', 'rank': 8}}\n",
  "name_error.py": "import math\nscale = undefined_name\n\ndef get_plan(arg=None):\n  return {}\n",
  "raises.py": "def get_plan(arg=None):\n  plan = {}\n  return plan['hidden']\n",
  "no_match.py": "def get_plan(arg=None):\n  return {'fc9': {'kind': 'lowrank', 'rank': 8}}\n",
  "grows.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'lowrank', 'rank': 600}}\n",
  "cp_huge.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'cp', 'rank': 7000}}\n",
  "readme_tt.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'tt', 'error': 0.3}}\n",
  "ratio_low.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'lowrank', 'ratio': 0.5}}\n",
  "good.py": "def get_plan(arg=None):\n  return {'hidden': {'kind': 'lowrank', 'rank': 8}}\n",
}

# (program, arguments, what the one line must say). {S}: a finished run, {C}: its finished
# compression, {R}: a run whose checkpoints/ was deleted, {P}: the plans, {T}: a scratch
# directory, {F}: a plain file. S, C and R are watched: no row may change them.
ROWS = [
  ("compress", "--from {S} --plan {P}/none.py --workdir {T}/c1", r"returned NoneType"),
  ("compress", "--plan {P}/none.py --workdir {T}/c1", r"--from and --plan are required"),
  ("compress", "--status --workdir {S}", r"holds no rank search .*measured budget"),
  (
    "compress",
    "--from {S} --plan {P}/unknown_field.py --workdir {T}/c1",
    r"no field\(s\) \['rnks'\]",
  ),
  ("compress", "--from {S} --plan {P}/rank0.py --workdir {T}/c1", r"rank must be >= 1"),
  ("compress", "--from {S} --plan {P}/rank_text.py --workdir {T}/c1", r"must be a whole number"),
  (
    "compress",
    "--from {S} --plan {P}/error_text.py --workdir {T}/c1",
    r"error='x' must be a number",
  ),
  ("compress", "--from {S} --plan {P}/budget0.py --workdir {T}/c1", r"a budget is .*got 0"),
  ("compress", "--from {S} --plan {P}/budget_list.py --workdir {T}/c1", r"a budget is .*\[100\]"),
  ("compress", "--from {S} --plan {P}/budget_key.py --workdir {T}/c1", r"a budget is .*weights"),
  ("compress", "--from {S} --plan {P}/budget_rank.py --workdir {T}/c1", r"remove rank=8"),
  ("compress", "--from {S} --plan {P}/budget_drop.py --workdir {T}/c1", r"accuracy_drop=-1 is not"),
  (
    "compress",
    "--from {S} --plan {P}/good.py --workdir {T}/c1 --validation_examples 0",
    r"--validation_examples=0 must be an integer >= 1",
  ),
  ("compress", "--from {S} --plan {P}/extra_key.py --workdir {T}/c1", r"remove \['budgt'\]"),
  (
    "compress",
    "--from {S} --plan {P}/budget_no_layers.py --workdir {T}/c1",
    r"budget_no_layers.py: a plan with a 'budget' puts its layer entries under 'layers'",
  ),
  (
    "compress",
    "--from {S} --plan {P}/no_arg.py:x --workdir {T}/c1",
    r"no_arg.py: TypeError: get_plan",
  ),
  (
    "compress",
    "--from {S} --plan {P}/name_error.py --workdir {T}/c1",
    r"name_error.py line 2: NameError",
  ),
  ("compress", "--from {S} --plan {P}/raises.py --workdir {T}/c1", r"raises.py line 3: KeyError"),
  (
    "compress",
    "--from {S} --plan {P}/float_arg.py:abc --workdir {T}/c1",
    r"float_arg.py line 2 \(given 'abc'\): ValueError: could not convert",
  ),
  (
    "compress",
    "--from {S} --plan {P}/good.py --workdir {T}/c1 --finetune_epochs 1 --config.num_epochs=3",
    r"--config.num_epochs=3: a compression's fine-tune epochs are --finetune_epochs N \(now 1\)",
  ),
  (
    "compress",
    "--from {S} --plan {P}/missing.py --workdir {T}/c1",
    r"plan file .*missing.py' does not exist",
  ),
  (
    "compress",
    "--from {S} --plan {P}/no_match.py --workdir {T}/c1",
    r"'fc9' matches no layer; the model's layers are hidden, output",
  ),
  (
    "compress",
    "--from {S} --plan {P}/grows.py --workdir {T}/c1",
    r"stores 1,228,800 weights, not fewer than the dense layer's 1,048,576",
  ),
  (
    "compress",
    "--from {S} --plan {P}/cp_huge.py --workdir {T}/c1",
    r"cp rank=7000 is above what is useful for this layer \(at most 6553",
  ),
  (
    "compress",
    "--from {S} --plan {P}/readme_tt.py --workdir {T}/c1",
    r"error=0.3 needs TT-ranks .* not fewer than the dense",
  ),
  (
    "compress",
    "--from {S} --plan {P}/ratio_low.py --workdir {T}/c1",
    r"ratio=0.5 must be a number above 1",
  ),
  ("compress", "--from {S} --plan {P}/good.py --workdir {F}", r"is a file; give a directory"),
  ("compress", "--from {S} --plan {P}/good.py --workdir {F}/run", r"lies under the file"),
  ("compress", "--from {S} --plan {P}/good.py --workdir {R}", r"exists and is not empty"),
  (
    "compress",
    "--from {S} --plan {P}/good.py --workdir {T}/c1 --finetune_epochs=-1",
    r"finetune_epochs=-1 must be an integer >= 0",
  ),
  (
    "compress",
    "--from {S} --plan {P}/good.py --workdir {T}/c1 --config.no_such=1",
    r"has no field 'no_such'",
  ),
  ("compress", "--from {T}/nothing --plan {P}/good.py --workdir {T}/c1", r"is not a tnjax run"),
  ("compress", "--from {S} --plan {P}/good.py --workdir {S}/small", r"lies inside the source run"),
  (
    "compress",
    "--from {S} --plan {P}/good.py --workdir {T}/c9 --finetune_epochs two",
    r"flag --finetune_epochs=two: invalid literal .*--helpshort",
  ),
  ("evaluate", "--step 3", r"--workdir must have a value"),
  (
    "compress",
    "--from {S} --plan {P}/good.py --workdir {C} --finetune_epochs 2",
    r"fine-tuned under another config: num_epochs: 1 -> 2.*--allow_config_change",
  ),
  (
    "compress",
    "--from {S} --plan {P}/good.py --workdir {C} --finetune_epochs 1 --config.model.layers.hidden.rank=4",
    r"--config.model overrides would change it",
  ),
  (
    "compress",
    "--from {S} --plan {P}/grows.py --workdir {C} --finetune_epochs 1",
    r"holds the compression by another plan \(that of .*good.py when it ran: \{'budget'",
  ),
  ("evaluate", "--workdir {S} --step 999", r"no checkpoint at step 999; its saved steps are 8, 16"),
  ("evaluate", "--workdir {S} --merge {T}", r"--merge .* is a directory"),
  ("evaluate", "--workdir {S} --merge {F}/x.npz", r"is a file, not a directory"),
  ("evaluate", "--workdir {S} --merge {T}/x.txt", r"ending in .npz"),
  (
    "evaluate",
    "--workdir {S} --config.eval_batch_size=0",
    r"config.eval_batch_size=0 must be an integer >= 1",
  ),
  (
    "evaluate",
    "--workdir {S} --config.data.max_test_examples=-1",
    r"config.data.max_test_examples=-1 must be",
  ),
  (
    "evaluate",
    "--workdir {S} --config.model.name=lenet5",
    r"--config.model.name would change the trained run",
  ),
  ("evaluate", "--workdir {S} --config.no_such=1", r"has no field 'no_such'"),
  ("evaluate", "--workdir {T}/nothing", r"is not a tnjax run"),
  ("evaluate", "--workdir {R}", r"has no checkpoint yet"),
  ("export", "--workdir {S} --out {T}", r"--out .* is a directory"),
  ("export", "--workdir {S} --out {T}/new_dir/", r"--out .*/new_dir/ names a directory"),
  ("export", "--workdir {S} --out {F}/m.jaxexport", r"is a file, not a directory"),
  ("export", "--workdir {S} --out {T}/m.jaxexport --tflite {T}/m.bin", r"ending in .tflite"),
  ("export", "--workdir {S} --out {T}/m.jaxexport --step 3", r"no checkpoint at step 3"),
  ("export", "--workdir {S} --out {T}/m.jaxexport --config.seed=1", r"takes no --config"),
  ("export", "--workdir {T}/nothing --out {T}/m.jaxexport", r"is not a tnjax run"),
  ("sweep", "--config {SW} --workdir {T}/sw --points a", r"--points 'a': 'a' is not an integer"),
  ("sweep", "--config {SW} --workdir {T}/sw --seeds a,b", r"--seeds 'a,b': 'a' is not an integer"),
  ("sweep", "--config {SW} --workdir {T}/sw --seeds 1,1", r"lists a value twice"),
  ("sweep", "--config {SW} --workdir {T}/sw --status --seeds a,b", r"'a' is not an integer"),
  ("sweep", "--config {SW} --workdir {T}/sw --status --points 99", r"--points \[99\] out of range"),
  (
    "sweep",
    "--config {SW} --workdir {T}/sw --points 99 --dry_run",
    r"--points \[99\] out of range",
  ),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.data.max_test_examples=-1",
    r"config.data.max_test_examples=-1 must be an integer >= 0",
  ),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.data.max_train_examples=-5",
    r"config.data.max_train_examples=-5",
  ),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.data.synthetic.num_classes=0",
    r"synthetic.num_classes=0 must be an integer >= 2",
  ),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.data.synthetic.num_test=0",
    r"synthetic.num_test=0 must be",
  ),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.data.synthetic.image_shape=(28,28)",
    r"image_shape=\(28, 28\) must be \(height, width, channels\)",
  ),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.schedule.decay_epochs=-1",
    r"config.schedule.decay_epochs=-1 must be a number >= 0",
  ),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.schedule.warmup_epochs=-2",
    r"warmup_epochs=-2 must be a number >= 0",
  ),
  ("train", "--config {CF} --workdir {T}/t1 --config.data.pad_to=-1", r"config.data.pad_to=-1"),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.schedule.learning_rate=0",
    r"config.schedule.learning_rate=0.0 must be a number > 0 \(e.g. 1e-3; the log-spaced",
  ),
  (
    "train",
    "--config {CF} --workdir {T}/t1 --config.optimizer.weight_decay=-5",
    r"config.optimizer.weight_decay=-5.0 must be a number >= 0",
  ),
  (
    "train",
    "--config "
    + os.path.join(REPO, "configs", "tt_mnist.py")
    + ":fashion_idx,synthetic --workdir {T}/t1",
    r"fashion_idx and synthetic each choose the data; give one of them",
  ),
  (
    "train",
    "--config {CF} --workdir {S} --config.num_epochs=1 --allow_config_change",
    r"trained to step 16, past the 8 steps of config.num_epochs=1",
  ),
  (
    "train",
    "--config {CF} --workdir {R}",
    r"holds result.json and metrics.jsonl but no checkpoints/",
  ),
  ("train", "--config {P}/name_error.py --workdir {T}/t1", r"name_error.py line 2: NameError"),
]


def _source_runs(root):
  source = root / "source"
  trainer.train(dense_mnist.get_config("synthetic,runlocal"), source)
  plans = root / "plans"
  plans.mkdir()
  for name, text in PLANS.items():
    (plans / name).write_text(text)
  compressed = root / "compressed"
  compress_run(str(source), str(plans / "good.py"), str(compressed), finetune_epochs=1)
  no_checkpoints = root / "no_checkpoints"
  shutil.copytree(source, no_checkpoints)
  shutil.rmtree(no_checkpoints / "checkpoints")
  (root / "scratch").mkdir()
  (root / "a_file").write_text("not a directory")
  return {
    "S": source,
    "C": compressed,
    "R": no_checkpoints,
    "P": plans,
    "T": root / "scratch",
    "F": root / "a_file",
    "CF": CONFIG,
    "SW": SWEEP_CONFIG,
  }


def _drive(program, cases, watch):
  request = {"program": program, "watch": [str(w) for w in watch], "cases": cases}
  env = {**os.environ, "PYTHONPATH": REPO}
  return subprocess.Popen(
    [sys.executable, os.path.join(HERE, "program_driver.py")],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    cwd=REPO,
    env=env,
  ), json.dumps(request)


def test_every_bad_input_ends_in_one_line_exit_2_and_changes_nothing(tmp_path):
  places = _source_runs(tmp_path)
  watch = [places["S"], places["C"], places["R"]]
  programs = sorted({program for program, _, _ in ROWS})
  cases = {p: [args.format(**places).split() for q, args, _ in ROWS if q == p] for p in programs}
  started = {p: _drive(p, cases[p], watch) for p in programs}
  results = {}
  for program, (process, request) in started.items():
    out, err = process.communicate(request, timeout=600)
    assert process.returncode == 0, err[-3000:]
    results[program] = iter(json.loads(out.strip().splitlines()[-1]))
  failures = []
  for program, args, expected in ROWS:
    result = next(results[program])
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    problems = []
    if result["code"] != 2:
      problems.append(f"exit {result['code']}")
    if "Traceback" in result["stderr"] or len(lines) != 1:
      problems.append(f"{len(lines)} stderr lines")
    elif not re.search(expected, lines[0]):
      problems.append("message")
    if result["changed"]:
      problems.append(f"changed {result['changed']}")
    if problems:
      failures.append(f"{program} {args}: {', '.join(problems)}:\n    {result['stderr'][-600:]}")
  assert not failures, f"{len(failures)} of {len(ROWS)} rows:\n" + "\n".join(failures)
  # The refused reruns left the compressed run whole: it still loads and evaluates.
  from tnjax.compression.evaluate_export import evaluate_run

  assert 0.0 <= evaluate_run(str(places["C"]))["test_accuracy"] <= 1.0
