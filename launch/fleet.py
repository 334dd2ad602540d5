#!/usr/bin/env python3
r"""One sweep on a fleet of single-host TPU VMs, all against one bucket workdir.

  TPU_NAME=fleet ZONE=us-central2-b ACCELERATOR=v4-8 TNJAX_BUCKET=gs://my-bucket \
      python launch/fleet.py 8 configs/tt_mnist.py:fashion_idx sweeps/fig1 --spot \
      -- --seeds 0,1,2 --config.num_epochs=30
  DRY_RUN=1 python launch/fleet.py ...       # print every gcloud command, run nothing

Creates N VMs ($TPU_NAME-1 ... -N; spot with --spot, through queued resources), sets
each up (launch/setup_tpu.sh) and runs the same `tnjax.sweep` on each
(launch/sweep_tpu.sh). Every VM takes the points nobody holds: a point's gs:// lock
(generation preconditions) hands each point to exactly one VM, and a point another
VM left half-done resumes from its checkpoint. Then it supervises: every --poll
seconds it reads the sweep's status from the bucket; a VM whose sweep ended while
points are still to do gets its sweep started again, recreated and set up first if
it was preempted or deleted. When every point is finished, diverged or failed, the VMs are
deleted (--keep keeps them). Ctrl-C stops supervising and leaves the VMs as they are;
running it again picks the fleet up where it stands.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DRY_RUN = os.environ.get("DRY_RUN", "0") == "1"
FINISHED = ("finished", "diverged", "failed")  # a point in these needs no VM


def _fail(message: str):
  """One stderr line and exit 2, as tnjax's programs end on a mistake."""
  print(f"fleet: {message}", file=sys.stderr, flush=True)
  raise SystemExit(2)


def launch(script: str, vm: str, *args, wait=True):
  """Runs launch/<script> for one VM (its TPU_NAME); the scripts print their commands."""
  env = dict(os.environ, TPU_NAME=vm)
  command = ["bash", os.path.join(HERE, script), *args]
  if not wait:
    return subprocess.Popen(command, env=env)
  return subprocess.run(command, env=env, check=False).returncode


def alive(vm: str) -> bool:
  zone = os.environ.get("ZONE", "us-central2-b")
  described = subprocess.run(
    ["gcloud", "compute", "tpus", "queued-resources", "describe", f"{vm}-qr", "--zone", zone],
    capture_output=True,
    text=True,
  )
  return described.returncode == 0 and "ACTIVE" in described.stdout


def _flag(args: list[str], name: str) -> list[str]:
  """`--name=value` for a flag given as `--name value` or `--name=value` in args."""
  for i, arg in enumerate(args):
    if arg.startswith(f"--{name}="):
      return [arg]
    if arg == f"--{name}" and i + 1 < len(args):
      return [f"--{name}={args[i + 1]}"]
  return []


def _tnjax_sweep(args: list[str], failure: str) -> str:
  """stdout of `python -m tnjax.sweep ARGS`; its one-line error ends the fleet."""
  done = subprocess.run(
    [sys.executable, "-m", "tnjax.sweep", *args],
    capture_output=True,
    text=True,
    cwd=os.path.dirname(HERE),
  )
  if done.returncode != 0:
    why = (done.stderr.strip().splitlines() or ["(no message)"])[-1]  # tnjax's one line
    _fail(f"{failure}: {why}")
  return done.stdout


def sweep_counts(config: str, workdir: str, sweep_args: list[str]) -> dict[str, int]:
  """{state: number of runs} of the sweep, read from the bucket by `tnjax.sweep --status`."""
  out = _tnjax_sweep(
    ["--status", f"--workdir={workdir}", f"--config={config}"]
    + _flag(sweep_args, "seeds")
    + _flag(sweep_args, "points"),
    "cannot read the sweep's status",
  )
  total = out.strip().splitlines()[-1]  # "12 runs: 3 new, 2 running, 7 finished."
  counts = {}
  for part in total.split(":", 1)[1].strip(" .").split(","):
    number, state = part.split()
    counts[state] = int(number)
  return counts


def check_sweep(config: str, workdir: str, sweep_args: list[str]) -> None:
  """The sweep's whole command (config, --config.FIELD values, --seeds, --points, the
  bucket) checked here by `tnjax.sweep --dry_run`, before any VM is made and paid for."""
  args = [f"--config={config}", f"--workdir={workdir}", *sweep_args, "--dry_run"]
  _tnjax_sweep(args, "the sweep would fail on every VM")


def bring_up(vm: str, spot: bool) -> None:
  if not DRY_RUN and alive(vm):
    return
  if not DRY_RUN:
    launch("delete_tpu.sh", vm)  # a preempted queued resource must go before it is re-made
  launch("create_tpu.sh", vm, *(["--spot"] if spot else []))
  launch("setup_tpu.sh", vm)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("count", type=int, help="number of VMs")
  parser.add_argument("config", help="config file[:args] with a sweep()")
  parser.add_argument("workdir", help="the sweep's workdir inside $TNJAX_BUCKET")
  parser.add_argument("--spot", action="store_true", help="spot VMs")
  parser.add_argument("--poll", type=float, default=60.0, help="seconds between status reads")
  parser.add_argument("--keep", action="store_true", help="do not delete the VMs at the end")
  argv = sys.argv[1:]
  own, sweep_args = (
    (argv[: argv.index("--")], argv[argv.index("--") + 1 :])
    if "--" in argv
    else (
      argv,
      [],
    )
  )
  args = parser.parse_args(own)
  args.sweep_args = sweep_args
  prefix = os.environ.get("TPU_NAME", "tnjax-fleet")
  bucket = os.environ.get("TNJAX_BUCKET", "")
  if args.count < 1:
    _fail(f"count must be at least 1 VM, got {args.count}.")
  if not bucket.startswith("gs://"):  # every VM and this supervisor meet in the bucket
    _fail(f"set TNJAX_BUCKET=gs://your-bucket (the sweep's home); got {bucket!r}.")
  vms = [f"{prefix}-{i + 1}" for i in range(args.count)]
  sweep = [args.config, args.workdir, *args.sweep_args]
  workdir = f"{bucket.rstrip('/')}/{args.workdir}"
  if not DRY_RUN:  # the whole sweep command and the bucket checked before any VM exists
    check_sweep(args.config, workdir, args.sweep_args)
  for vm in vms:
    bring_up(vm, args.spot)
  if DRY_RUN:  # the scripts print what they would run
    for vm in vms:
      launch("sweep_tpu.sh", vm, *sweep)
    for vm in vms:
      launch("delete_tpu.sh", vm)
    return 0
  running = {vm: launch("sweep_tpu.sh", vm, *sweep, wait=False) for vm in vms}
  while True:
    counts = sweep_counts(args.config, workdir, args.sweep_args)
    left = sum(n for state, n in counts.items() if state not in FINISHED)
    print(f"fleet: {counts}", flush=True)
    if left == 0:
      break
    free = counts.get("new", 0) + counts.get("partial", 0)
    for vm, process in running.items():
      if process.poll() is not None and free:  # preempted, deleted, or its pass is over
        bring_up(vm, args.spot)
        running[vm] = launch("sweep_tpu.sh", vm, *sweep, wait=False)
        free -= 1
    time.sleep(args.poll)
  for process in running.values():
    process.wait()
  if not args.keep:
    for vm in vms:
      launch("delete_tpu.sh", vm)
  print(f"fleet: every point of {workdir} is finished.", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
