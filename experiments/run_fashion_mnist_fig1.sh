#!/usr/bin/env bash
# Novikov et al. (2015) Figure 1 on real Fashion-MNIST (Debian's IDX files), FC-2:
# TT shapes 4x8x8x4 / 4x4x4x4x4 / 2^10 at ranks 2, 4, 8, the matrix-rank baseline
# at ranks 2, 8, 32, and the dense layer; 30 epochs each, SGD momentum 0.9, batch 100,
# cosine lr 0.05 -> 0 (the paper's log-spaced 1e-2 schedule needs ~100 epochs).
# Then: python experiments/novikov_fig1.py --workdir $RUNS/fig1_tt --workdir $RUNS/fig1_mr \
#         --workdir $RUNS/fig1_dense --out experiments/results/novikov_fig1_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-30}
SCHEDULE=(--set schedule.name=cosine --set schedule.learning_rate=0.05)
python -m tnjax.sweep --config "configs/tt_mnist.py:fashion_idx,epochs=$EPOCHS" \
  --workdir "$RUNS/fig1_tt" --points 1,2,3,5,6,7,9,10,11 "${SCHEDULE[@]}"
python -m tnjax.sweep --config "configs/mr_mnist.py:fashion_idx,epochs=$EPOCHS" \
  --workdir "$RUNS/fig1_mr" --points 1,3,5 "${SCHEDULE[@]}"
python -m tnjax.train --config "configs/dense_mnist.py:fashion_idx,epochs=$EPOCHS" \
  --workdir "$RUNS/fig1_dense/00_dense" --noconfig.progress_bar \
  --config.schedule.name=cosine --config.schedule.learning_rate=0.05
