#!/usr/bin/env bash
# Every speed benchmark on an accelerator (GPU/TPU) in one sitting, each under its own time
# limit so that one slow case cannot cost the others their results; files go to RESULTS_DIR
# (copy them to benchmarks/results/ afterwards). For a lent machine with little time on it:
#   bash benchmarks/accelerator_suite.sh RESULTS_DIR
set -uo pipefail
DIR=${1:?usage: bash benchmarks/accelerator_suite.sh RESULTS_DIR}
PYTHON=${PYTHON:-python3}
TAG=${TAG:-gpu}  # the results files' suffix, as benchmarks/results/ names them by backend
mkdir -p "$DIR"
export PYTHONUNBUFFERED=1
run() {
  local limit=$1
  shift
  echo "== $(date -u +%T) $*"
  timeout "$limit" "$PYTHON" -m "$@" || echo "!! exit $? after at most ${limit}s: $*"
}
run 60 benchmarks.adtn_generator --repeats 10 --out "$DIR/adtn_generator_${TAG}.md"
# Whether scanning the ADTN gate layers cuts XLA:GPU's long compiles without slowing the step.
run 240 benchmarks.adtn_scan --out "$DIR/adtn_scan_${TAG}.md"
run 200 benchmarks.train_step --repeats 10 --max_seconds 5 --out "$DIR/train_step_${TAG}.md"
# The 224x224 VGG configs: the ImageNet rows that a 2-core CPU cannot time.
run 100 benchmarks.train_step --imagenet --filter tt_vgg --repeats 5 --max_seconds 5 \
  --out "$DIR/train_step_imagenet_${TAG}.md"
run 150 benchmarks.layers --quick --out "$DIR/layers_${TAG}.md"
echo "== $(date -u +%T) done"
