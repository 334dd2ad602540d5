#!/usr/bin/env bash
# ADTN (Qing et al. 2025) study on real Fashion-MNIST (Debian's IDX files), for FC-2 and
# LeNet-5, in three stages that each resume:
#   1. pilot: Adam learning rate for ADTN M=4 ReLU, PILOT_EPOCHS epochs per rate, one seed;
#      the rate with the best test accuracy is used below (experiments/pick_rate.py);
#   2. grid at one seed: identity or ReLU between gate layers x M = 2, 4, 8, and dense
#      (the configs' sweep()), EPOCHS epochs;
#   3. STAGE=final: the best grid setting of each network and its dense twin at SEEDS, and the
#      paper's "deep beats shallow" comparison (ADTN M=4 against TT and CP of about as many
#      weights on FC-2's hidden layer).
# Then: python experiments/adtn_table.py --workdir $RUNS/adtn_fc2 --workdir $RUNS/adtn_lenet5 \
#         --out experiments/results/adtn_study_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-20}
PILOT_EPOCHS=${PILOT_EPOCHS:-3}
SEEDS=${SEEDS:-0,1,2}
STAGE=${STAGE:-grid}
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
      --seeds 0 --config.schedule.learning_rate="${RATE[$net]}"
  fi
done
if [[ "$STAGE" == final ]]; then
  # BEST_FC2 / BEST_LENET5: the grid's best point index (python -m tnjax.sweep --status).
  python -m tnjax.sweep --config "configs/adtn_fc2_mnist.py:fashion_idx,epochs=$EPOCHS" \
    --workdir "$RUNS/adtn_fc2" --points "$BEST_FC2,6" --seeds "$SEEDS" \
    --config.schedule.learning_rate="${RATE[fc2]}"
  python -m tnjax.sweep --config "configs/adtn_lenet5_mnist.py:fashion_idx,epochs=$EPOCHS" \
    --workdir "$RUNS/adtn_lenet5" --points "$BEST_LENET5,6" --seeds "$SEEDS" \
    --config.schedule.learning_rate="${RATE[lenet5]}"
  python -m tnjax.sweep --config "configs/adtn_fc2_mnist.py:fashion_idx,shallow,epochs=$EPOCHS" \
    --workdir "$RUNS/adtn_fc2_shallow" --seeds "$SEEDS" --config.schedule.learning_rate="${RATE[fc2]}"
fi
