#!/usr/bin/env bash
# Tensor sketching of LeNet-5 on real Fashion-MNIST (Debian's IDX files): 3 compression
# rates, each against Tucker-2 (conv) + TT (FC) at matched per-layer parameter counts,
# and the dense LeNet-5; the same epochs for all (configs/sketch_mnist.py sweep()).
# Then: python experiments/sketch_curves.py --workdir $RUNS/sketch \
#         --out experiments/results/sketch_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-0,1,2}
# Every point of sketch_mnist.sweep(), 3 seeds: conv+FC and conv-only comparisons, l = 1, 2, 4.
python -m tnjax.sweep --config "configs/sketch_mnist.py:fashion_idx,epochs=$EPOCHS" \
  --workdir "$RUNS/sketch" --seeds "$SEEDS"
