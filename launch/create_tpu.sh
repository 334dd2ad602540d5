#!/usr/bin/env bash
# Creates a Cloud TPU VM (or pod slice) through a queued resource.
#   TPU_NAME=tnjax ZONE=us-central2-b ACCELERATOR=v4-32 launch/create_tpu.sh [--spot]
#   DRY_RUN=1 launch/create_tpu.sh     # print the commands only
source "$(dirname "$0")/common.sh"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,4p' "$0"; exit 0
fi
extra=()
if [[ "${1:-}" == "--spot" ]]; then
  extra+=(--spot)
fi
run gcloud compute tpus queued-resources create "$TPU_NAME-qr" --node-id "$TPU_NAME" \
  --zone "$ZONE" --accelerator-type "$ACCELERATOR" --runtime-version "$RUNTIME" "${extra[@]}"
run gcloud compute tpus queued-resources describe "$TPU_NAME-qr" --zone "$ZONE"
