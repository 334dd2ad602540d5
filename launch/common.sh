# Shared by the launch scripts: settings from the environment, and `run`, which
# prints each command and, unless DRY_RUN=1, executes it.
# shellcheck shell=bash
set -euo pipefail

: "${TPU_NAME:=tnjax-tpu}"
: "${ZONE:=us-central2-b}"
: "${ACCELERATOR:=v4-8}"                 # v4-8 (one VM), v4-32 / v5litepod-16 (pod slices)
: "${RUNTIME:=tpu-ubuntu2204-base}"      # its system Python is 3.10: tnjax gets its own venv
: "${TNJAX_BUCKET:=gs://my-tnjax-bucket}"  # workdirs and TFDS data live here
: "${GIT_REF:=}"                         # empty: ship the checkout as it is; else `git archive REF`
: "${PYTHON_VERSION:=3.11}"              # the workers' venv (uv fetches this Python)
: "${TNJAX_VENV:=\$HOME/tnjax-venv}"     # expanded on the worker
: "${JAX_EXTRA:=tpu}"                    # pip extra of jax installed beside tnjax
: "${DRY_RUN:=0}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_PYTHON="$TNJAX_VENV/bin/python"

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

# Runs `python -m MODULE --config CONFIG --workdir $TNJAX_BUCKET/WORKDIR ARGS...` on every
# worker, each argument quoted for the remote shell: "--seeds '0, 1'", a dict override or
# 'x.py:a=1, b=2' arrive whole.
run_tnjax_on_all_workers() {
  local module=$1 config=$2 workdir=$3 args
  shift 3
  args=$(printf ' %q' --config "$config" --workdir "$TNJAX_BUCKET/$workdir" --config.mesh.data=-1 "$@")
  on_all_workers "cd tnjax && TFDS_DATA_DIR=$TNJAX_BUCKET/tensorflow_datasets $VENV_PYTHON \
-m $module$args"
}
