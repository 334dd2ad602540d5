#!/usr/bin/env bash
# Copies tnjax to every worker and installs it with JAX for TPU.
#   TPU_NAME=tnjax ZONE=us-central2-b launch/setup_tpu.sh
source "$(dirname "$0")/common.sh"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,3p' "$0"; exit 0
fi
on_all_workers "git clone $REPO_URL tnjax || (cd tnjax && git pull)"
on_all_workers "cd tnjax && pip install -e . 'jax[tpu]'"
