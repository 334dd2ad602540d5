#!/usr/bin/env bash
# Prepares the TFDS datasets a config reads into $TNJAX_BUCKET/tensorflow_datasets, from
# this machine (TPU hosts have little disk; prepare once, read from every worker).
#   launch/prepare_data.sh configs/tt_cifar10.py [configs/sketch_cifar10.py ...]
source "$(dirname "$0")/common.sh"
if [[ $# -lt 1 ]]; then
  sed -n '2,4p' "$0"; exit 2
fi
run python -m tnjax.data.prepare --data_dir "$TNJAX_BUCKET/tensorflow_datasets" "$@"
