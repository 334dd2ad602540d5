#!/usr/bin/env bash
# Runs a config's whole sweep() on the TPU VM, one point after another (resumable:
# rerun the same command after a preemption).
#   launch/sweep_tpu.sh configs/tt_mnist.py runs/fig1 [--config.num_epochs=30 ...]
source "$(dirname "$0")/common.sh"
if [[ $# -lt 2 ]]; then
  sed -n '2,5p' "$0"; exit 2
fi
config=$1; workdir=$2; shift 2
# Each argument quoted for the remote shell: "--seeds '0, 1'" or a --config.x='{...}' arrive whole.
args=$(printf ' %q' --config "$config" --workdir "$TNJAX_BUCKET/$workdir" --config.mesh.data=-1 "$@")
on_all_workers "cd tnjax && TFDS_DATA_DIR=$TNJAX_BUCKET/tensorflow_datasets $VENV_PYTHON \
-m tnjax.sweep$args"
