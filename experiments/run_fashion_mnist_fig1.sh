#!/usr/bin/env bash
# Novikov et al. (2015) Figure 1 on real Fashion-MNIST (Debian's IDX files), FC-2, 3 seeds:
# the five TT shape families (32x32, 4x8x8x4, 4^5, 2x2x8x8x2x2, 2^10) at ranks 2, 4, 8 with
# the paper's ranks kept at every bond (the paper's x-axis counts), the HashedNet point
# (both layers TT, rank 8 and 6), the matrix-rank baseline at ranks 2, 8, 32 and the dense
# layer; EPOCHS epochs each, SGD momentum 0.9, batch 100, cosine lr 0.05 -> 0 (the paper's
# log-spaced 1e-2 schedule needs ~100 epochs).
# Then: python experiments/novikov_fig1.py --workdir $RUNS/fig1_tt --workdir $RUNS/fig1_mr \
#         --workdir $RUNS/fig1_dense --workdir $RUNS/fig1_hashednet \
#         --out experiments/results/novikov_fig1_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-0,1,2}
TT_POINTS=${TT_POINTS:-1,2,3,5,6,7,9,10,11,13,14,15,17,18,19}  # ranks 2, 4, 8 of each family
MR_POINTS=${MR_POINTS:-1,3,5}  # ranks 2, 8, 32
SCHEDULE=(--config.schedule.name=cosine --config.schedule.learning_rate=0.05 --config.schedule.end_learning_rate=0.0)
for seed in ${SEEDS//,/ }; do
  for rank in 8 6; do
    python -m tnjax.train --config "configs/tt_mnist.py:fashion_idx,hashednet,rank=$rank,epochs=$EPOCHS" \
      --workdir "$RUNS/fig1_hashednet/rank${rank}_seed=$seed" --noconfig.progress_bar --config.seed="$seed" \
      --config.schedule.name=cosine --config.schedule.learning_rate=0.05 --config.schedule.end_learning_rate=0.0
  done
  python -m tnjax.train --config "configs/dense_mnist.py:fashion_idx,epochs=$EPOCHS" \
    --workdir "$RUNS/fig1_dense/dense_seed=$seed" --noconfig.progress_bar --config.seed="$seed" \
    --config.schedule.name=cosine --config.schedule.learning_rate=0.05 --config.schedule.end_learning_rate=0.0
done
python -m tnjax.sweep --config "configs/tt_mnist.py:fashion_idx,epochs=$EPOCHS" --seeds "$SEEDS" \
  --workdir "$RUNS/fig1_tt" --points "$TT_POINTS" "${SCHEDULE[@]}"
python -m tnjax.sweep --config "configs/mr_mnist.py:fashion_idx,epochs=$EPOCHS" --seeds "$SEEDS" \
  --workdir "$RUNS/fig1_mr" --points "$MR_POINTS" "${SCHEDULE[@]}"
