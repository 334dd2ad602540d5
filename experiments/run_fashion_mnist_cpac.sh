#!/usr/bin/env bash
# CPAC-Conv (Wang, Guo & Yue 2021) rank sweeps on real Fashion-MNIST (Debian's IDX files),
# 3 seeds: the paper's two-conv network at R = 1, 2, 4, 8, 12 and its single-conv network at
# R = 1..6, each beside the bias-free dense-conv baseline, in the `fast` setting and in the
# paper's own (batch 1, Adam 1e-4), the same epochs for all.
# Then, per setting: python experiments/cpac_rank_table.py --workdir $RUNS/cpac_fast \
#         --dense_workdir $RUNS/cpac_dense_fast --out experiments/results/cpac_rank_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-0,1,2}
# Both settings: `fast` (batch 64, Adam 3e-3) and the paper's (batch 1, Adam 1e-4; slow:
# 60,000 steps an epoch). result.json holds the last and the best epoch's accuracy.
for setting in fast paper; do
  arg=$([ "$setting" = fast ] && echo "fast," || echo "")
  python -m tnjax.sweep --config "configs/cpac_mnist.py:${arg}fashion_idx,epochs=$EPOCHS" \
    --workdir "$RUNS/cpac_$setting" --points 0,1,3,7,11 --seeds "$SEEDS"
  python -m tnjax.sweep --config "configs/cpac_mnist.py:${arg}single_conv,fashion_idx,epochs=$EPOCHS" \
    --workdir "$RUNS/cpac_single_$setting" --points 0,1,2,3,4,5 --seeds "$SEEDS"
  for seed in ${SEEDS//,/ }; do
    python -m tnjax.train --config "configs/cpac_mnist.py:${arg}dense,fashion_idx,epochs=$EPOCHS" \
      --workdir "$RUNS/cpac_dense_$setting/dense_seed=$seed" --config.seed="$seed" --noconfig.progress_bar
  done
done
