#!/usr/bin/env bash
# Deletes the TPU VM and its queued resource.
#   TPU_NAME=tnjax ZONE=us-central2-b launch/delete_tpu.sh
source "$(dirname "$0")/common.sh"
run gcloud compute tpus queued-resources delete "$TPU_NAME-qr" --zone "$ZONE" --force --quiet
