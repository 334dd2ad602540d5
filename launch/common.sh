# Shared by the launch scripts: settings from the environment, and `run`, which
# prints each command and, unless DRY_RUN=1, executes it.
# shellcheck shell=bash
set -euo pipefail

: "${TPU_NAME:=tnjax-tpu}"
: "${ZONE:=us-central2-b}"
: "${ACCELERATOR:=v4-8}"                 # v4-8 (one VM), v4-32 / v5litepod-16 (pod slices)
: "${RUNTIME:=tpu-ubuntu2204-base}"
: "${TNJAX_BUCKET:=gs://my-tnjax-bucket}"  # workdirs and TFDS data live here
: "${REPO_URL:=https://github.com/tnjax/tnjax.git}"
: "${DRY_RUN:=0}"

run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [[ "$DRY_RUN" != 1 ]]; then
    "$@"
  fi
}

# Runs one shell command on every worker of the TPU VM (all hosts of a pod slice).
on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command "$1"
}
