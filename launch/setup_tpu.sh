#!/usr/bin/env bash
# Ships this checkout (or GIT_REF) to every worker and installs it into a Python 3.11 venv
# with the TPU build of JAX that tnjax's pins allow.
#   TPU_NAME=tnjax ZONE=us-central2-b launch/setup_tpu.sh
#   GIT_REF=v0.2 launch/setup_tpu.sh       # a tag or commit instead of the working tree
source "$(dirname "$0")/common.sh"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,5p' "$0"; exit 0
fi
archive="$(mktemp -d)/tnjax.tar.gz"
if [[ -n "$GIT_REF" ]]; then
  run git -C "$REPO_ROOT" archive --format=tar.gz -o "$archive" "$GIT_REF"
else  # tracked and untracked files, minus what .gitignore excludes (venvs, runs, caches)
  echo "+ (cd $REPO_ROOT && git ls-files -co --exclude-standard | tar -czf $archive -T -)"
  if [[ "$DRY_RUN" != 1 ]]; then
    (cd "$REPO_ROOT" && git ls-files -co --exclude-standard | tar -czf "$archive" -T -)
  fi
fi
run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:tnjax.tar.gz" --zone "$ZONE" --worker=all
# The TPU runtime's system Python is too old for tnjax: uv brings its own Python and
# resolves tnjax and jax[tpu] together, so the TPU JAX matches tnjax's jax range.
on_all_workers "set -e; rm -rf tnjax && mkdir tnjax && tar -xzf tnjax.tar.gz -C tnjax; \
export PATH=\$HOME/.local/bin:\$PATH; command -v uv >/dev/null || python3 -m pip install --user -q uv; \
uv venv --python $PYTHON_VERSION $TNJAX_VENV; \
uv pip install --python $VENV_PYTHON -e ./tnjax 'jax[$JAX_EXTRA]'; \
$VENV_PYTHON -c 'import jax, tnjax; print(jax.process_index(), jax.devices()[0].platform)'"
