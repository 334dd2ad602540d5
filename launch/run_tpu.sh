#!/usr/bin/env bash
# Runs one training command on every worker (same code on each host; JAX finds the
# other hosts of a pod slice itself). Workdir and TFDS data are in the bucket.
# Exit code: the trainer's (75 = preempted and saved: rerun the same command to resume).
#   launch/run_tpu.sh configs/tt_cifar10.py runs/tt_cifar10 [extra flags...]
#   DRY_RUN=1 launch/run_tpu.sh configs/tt_mnist.py runs/tt_mnist
source "$(dirname "$0")/common.sh"
if [[ $# -lt 2 ]]; then
  sed -n '2,7p' "$0"; exit 2
fi
run_tnjax_on_all_workers tnjax.train "$@"  # CONFIG WORKDIR [flags...]
