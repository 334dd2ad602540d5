"""launch/: shell syntax, dry-run commands, and the W&B sweep file's fields."""

import glob
import os
import shutil
import subprocess

import pytest
import yaml

from tnjax.configs import tt_mnist

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = sorted(glob.glob(os.path.join(REPO, "launch", "*.sh")))


def _dry_run(script, *args):
  env = dict(os.environ, DRY_RUN="1", TPU_NAME="t1", ZONE="z1", TNJAX_BUCKET="gs://b1")
  result = subprocess.run(
    ["bash", os.path.join(REPO, "launch", script), *args],
    env=env,
    capture_output=True,
    text=True,
    timeout=60,
  )
  assert result.returncode == 0, result.stderr
  return result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=os.path.basename)
def test_scripts_parse(script):
  assert subprocess.run(["bash", "-n", script], capture_output=True).returncode == 0
  if shutil.which("shellcheck"):
    result = subprocess.run(
      ["shellcheck", "-x", script], capture_output=True, text=True, cwd=os.path.dirname(script)
    )
    assert result.returncode == 0, result.stdout


def test_dry_runs_print_the_gcloud_commands_on_every_worker():
  out = _dry_run("run_tpu.sh", "configs/tt_mnist.py", "runs/x", "--config.num_epochs=3")
  assert out.startswith("+ gcloud compute tpus tpu-vm ssh t1 --zone z1 --worker=all --command")
  assert "python\\ -m\\ tnjax.train\\ --config\\ configs/tt_mnist.py" in out
  assert "gs://b1/runs/x" in out and "--config.num_epochs=3" in out
  out = _dry_run("sweep_tpu.sh", "configs/tt_mnist.py", "runs/fig1")
  assert "tnjax.sweep" in out and "--config.mesh.data=-1" in out
  out = _dry_run("create_tpu.sh", "--spot")
  assert "queued-resources create t1-qr --node-id t1 --zone z1" in out and "--spot" in out
  assert out.count("--worker=all") == 0
  assert _dry_run("setup_tpu.sh").count("--worker=all") == 2


def test_wandb_sweep_parameters_are_config_fields():
  with open(os.path.join(REPO, "launch", "wandb_sweep.yaml")) as f:
    sweep = yaml.safe_load(f)
  config = tt_mnist.get_config()
  for name in sweep["parameters"]:
    assert name.startswith("config.")
    node = config
    for part in name.split(".")[1:]:
      node = node[part]  # KeyError if the field does not exist
  assert "${args}" in sweep["command"] and "tnjax.train" in sweep["command"]


def test_sweep_arguments_reach_the_vm_whole_and_a_fleet_checks_them_before_any_vm(tmp_path):
  import shlex  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  for script in ("sweep_tpu.sh", "run_tpu.sh"):
    out = _dry_run(script, "tt_mnist:a=1, b=2", "runs/f", "--seeds", "0, 1", "--config.x={'a': 1}")
    gcloud = shlex.split(out.strip().removeprefix("+ "))
    remote = shlex.split(gcloud[gcloud.index("--command") + 1])  # as the VM's shell splits it
    assert remote[remote.index("--config") + 1] == "tt_mnist:a=1, b=2"
    assert remote[remote.index("--seeds") + 1] == "0, 1" and remote[-1] == "--config.x={'a': 1}"
  # A mistake in the sweep's arguments stops the fleet before it creates (and pays for) a VM.
  fake = tmp_path / "bin"
  fake.mkdir()
  (fake / "gcloud").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls.log\nexit 1\n')
  (fake / "gcloud").chmod(0o755)
  env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}", TNJAX_BUCKET="gs://b")
  command = [sys.executable, os.path.join(REPO, "launch", "fleet.py"), "2", "tt_mnist", "s/x"]
  result = subprocess.run(
    command + ["--", "--seeds", "a,b"], env=env, capture_output=True, text=True, timeout=120
  )
  assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--seeds" in result.stderr
  # A misspelt field would fail every VM's sweep: refused here too, with the nearest names.
  result = subprocess.run(
    command + ["--", "--config.nmu_epochs=3"], env=env, capture_output=True, text=True, timeout=120
  )
  assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
  assert "no field 'nmu_epochs'" in result.stderr and "num_epochs" in result.stderr
  assert not (tmp_path / "calls.log").exists()
  env.pop("TNJAX_BUCKET")
  result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
  assert result.returncode == 2 and "set TNJAX_BUCKET=gs://" in result.stderr
