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
config=$1; workdir=$2; shift 2
# Each argument quoted for the remote shell: dict overrides and 'x:a=1, b=2' arrive whole.
args=$(printf ' %q' --config "$config" --workdir "$TNJAX_BUCKET/$workdir" --config.mesh.data=-1 "$@")
on_all_workers "cd tnjax && TFDS_DATA_DIR=$TNJAX_BUCKET/tensorflow_datasets $VENV_PYTHON \
-m tnjax.train$args"
