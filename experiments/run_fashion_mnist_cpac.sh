#!/usr/bin/env bash
# CPAC-Conv (Wang, Guo & Yue 2021) rank sweep on real Fashion-MNIST (Debian's IDX files):
# the paper's network, `fast` variant (batch 64, Adam 3e-3), R = 1, 2, 4, 8, 12 and the
# bias-free dense-conv baseline, the same epochs for all.
# Then: python experiments/cpac_rank_table.py --workdir $RUNS/cpac --dense_workdir $RUNS/cpac_dense \
#         --out experiments/results/cpac_rank_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-10}
python -m tnjax.sweep --config "configs/cpac_mnist.py:fast,fashion_idx,epochs=$EPOCHS" \
  --workdir "$RUNS/cpac" --points 0,1,3,7,11
python -m tnjax.train --config "configs/cpac_mnist.py:fast,dense,fashion_idx,epochs=$EPOCHS" \
  --workdir "$RUNS/cpac_dense/00_dense" --noconfig.progress_bar
