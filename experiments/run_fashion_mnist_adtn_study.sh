#!/usr/bin/env bash
# ADTN (Qing et al. 2025) nonlinearity x depth study on real Fashion-MNIST (Debian's IDX
# files), 3 seeds: identity or ReLU between gate layers, M = 2, 4, 6, 8, for FC-2 and for
# LeNet-5 (their configs' sweep()), beside the dense twins; EPOCHS epochs each.
# Then: python experiments/adtn_table.py --workdir $RUNS/adtn_fc2 --workdir $RUNS/adtn_lenet5 \
#         --out experiments/results/adtn_study_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-30}
SEEDS=${SEEDS:-0,1,2}
python -m tnjax.sweep --config "configs/adtn_fc2_mnist.py:fashion_idx,epochs=$EPOCHS" \
  --workdir "$RUNS/adtn_fc2" --seeds "$SEEDS"
python -m tnjax.sweep --config "configs/adtn_lenet5_mnist.py:fashion_idx,epochs=$EPOCHS" \
  --workdir "$RUNS/adtn_lenet5" --seeds "$SEEDS"
# The paper's "deep beats shallow" claim on FC-2's hidden layer: ADTN M=4 against TT and CP
# of about as many weights, and dense (adtn_fc2_mnist.py's SHALLOW_COMPARISON).
python -m tnjax.sweep --config "configs/adtn_fc2_mnist.py:fashion_idx,shallow,epochs=$EPOCHS" \
  --workdir "$RUNS/adtn_fc2_shallow" --seeds "$SEEDS"
