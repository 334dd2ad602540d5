#!/usr/bin/env bash
# Every speed benchmark on an accelerator (GPU/TPU) in one sitting, in small pieces, each
# under its own time limit and written to its own file, so that one slow piece cannot cost
# the others their results; files go to RESULTS_DIR (copy them to benchmarks/results/
# afterwards; on a lent machine, tar the folder: few files come back). PART picks what
# runs: `main` (every config but the ADTNs, about 6 minutes on one H200), `adtn` (XLA:GPU
# compiles each ADTN network for over a minute: up to 8 minutes), `btt` (issue 34's
# headline ratios, the BTT layers, and, with FASHION_MNIST_IDX_DIR naming a folder of the
# four Fashion-MNIST .gz files carried along, as much of the BTT-ViT study's 3 seeds as
# 220 s allow: under 10 minutes in all), `adtn_compile` (whether XLA:GPU's GEMM autotuning is
# the ADTN compile time: benchmarks.adtn_scan with it on, then off; under 9 minutes) or `all`
# (the default: main, adtn and btt; more than one 10-minute call of a lent machine). See
# benchmarks/results/gpu_h200.md.
#   bash benchmarks/accelerator_suite.sh RESULTS_DIR [main|adtn|btt|adtn_compile|all]
set -uo pipefail
DIR=${1:?usage: bash benchmarks/accelerator_suite.sh RESULTS_DIR [main|adtn|btt|adtn_compile|all]}
PART=${2:-all}
case $PART in main | adtn | btt | adtn_compile | all) ;; *)
  echo "PART must be main, adtn, btt, adtn_compile or all, not '$PART'." >&2
  exit 2
  ;;
esac
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
if [[ $PART == adtn_compile ]]; then
  # The ADTN steps compile for over 90 s on an H200 against seconds on a CPU: each of the
  # generator's many small GEMMs is autotuned. Level 0 skips autotuning (cuBLAS defaults).
  run 250 benchmarks.adtn_scan --repeats 5 --out "$DIR/adtn_scan_${TAG}.md"
  XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_autotune_level=0" \
    run 250 benchmarks.adtn_scan --repeats 5 --out "$DIR/adtn_scan_autotune0_${TAG}.md"
  exit 0
fi
if [[ $PART == btt || $PART == all ]]; then
  run 200 benchmarks.anchors --quick --out "$DIR/headline_${TAG}.md"
  run 120 benchmarks.layers --quick --btt --out "$DIR/btt_${TAG}.md"
  if [[ -n ${FASHION_MNIST_IDX_DIR:-} ]]; then
    echo "== $(date -u +%T) BTT-ViT study (3 seeds) from $FASHION_MNIST_IDX_DIR"
    timeout 220 "$PYTHON" experiments/own_model/btt_vit.py --workdir "$DIR/btt_vit" --seeds 0,1,2 \
      || echo "!! BTT-ViT study stopped (exit $?); the report holds the runs that finished"
    timeout 30 "$PYTHON" experiments/own_model/btt_vit.py --workdir "$DIR/btt_vit" --report \
      --out "$DIR/btt_vit_fashion_mnist_${TAG}"
  fi
  [[ $PART == btt ]] && exit 0
fi
if [[ $PART != adtn ]]; then
# Training steps against the dense twin, one config family a file (about 20 s each there).
for family in tt_ sketch cpac dense_mnist mr_mnist; do
  run 90 benchmarks.train_step --filter "$family" --repeats 7 --max_seconds 3 \
    --out "$DIR/train_step_${family%_}_${TAG}.md"
done
# The 224x224 VGG configs: the ImageNet rows that a 2-core CPU cannot time.
run 100 benchmarks.train_step --imagenet --filter tt_vgg --repeats 5 --max_seconds 5 \
  --out "$DIR/train_step_imagenet_${TAG}.md"
for family in tt_ sketch cpac mr_mnist; do
  run 90 benchmarks.layers --quick --filter "$family" --out "$DIR/layers_${family%_}_${TAG}.md"
done
fi
[[ $PART == main ]] && exit 0
run 60 benchmarks.adtn_generator --repeats 10 --out "$DIR/adtn_generator_${TAG}.md"
# Whether scanning the ADTN gate layers cuts XLA:GPU's long compiles without slowing the step.
run 240 benchmarks.adtn_scan --out "$DIR/adtn_scan_${TAG}.md"
run 200 benchmarks.train_step --filter adtn --repeats 7 --max_seconds 3 \
  --out "$DIR/train_step_adtn_${TAG}.md"
echo "== $(date -u +%T) done"
