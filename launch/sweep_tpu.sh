#!/usr/bin/env bash
# Runs a config's whole sweep() on the TPU VM, one point after another (resumable:
# rerun the same command after a preemption).
#   launch/sweep_tpu.sh configs/tt_mnist.py runs/fig1 [--config.num_epochs=30 ...]
source "$(dirname "$0")/common.sh"
if [[ $# -lt 2 ]]; then
  sed -n '2,5p' "$0"; exit 2
fi
run_tnjax_on_all_workers tnjax.sweep "$@"  # CONFIG WORKDIR [flags...]
