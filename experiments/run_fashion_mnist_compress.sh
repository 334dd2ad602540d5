#!/usr/bin/env bash
# Compress-then-fine-tune on real Fashion-MNIST (issue 22's study): dense FC-2 and LeNet-5
# sources, each format at three ratios, accuracy right after conversion and after a short
# fine-tune, against the same compressed architecture trained from scratch for the same
# total epochs; SEEDS seeds. Then:
#   python experiments/compress_table.py --workdir $RUNS/compress --out experiments/results/compress_fashion_mnist
set -euo pipefail
RUNS=${RUNS:-runs}/compress
EPOCHS=${EPOCHS:-10}
FINETUNE=${FINETUNE:-2}
SEEDS=${SEEDS:-0,1,2}
NETS=${NETS:-fc2 lenet5}
KINDS=${KINDS:-tt lowrank cp sketch}
# Ratios per network: LeNet-5's layers are small (conv2 2,400 weights), and rank 1 of a
# low-rank or sketch fc2 is already 49x, so its budgets stop at 30x.
RATIOS_FC2=${RATIOS_FC2:-10 50 200}
RATIOS_LENET5=${RATIOS_LENET5:-4 10 30}
for seed in ${SEEDS//,/ }; do
  for net in $NETS; do
    source_config=$([ "$net" = fc2 ] && echo "configs/dense_mnist.py:fashion_idx" \
      || echo "configs/sketch_mnist.py:method=dense,fashion_idx")
    python -m tnjax.train --config "$source_config,epochs=$EPOCHS" \
      --workdir "$RUNS/source_${net}_seed=$seed" --config.seed="$seed" --noconfig.progress_bar
    for kind in $KINDS; do
      ratios=$([ "$net" = fc2 ] && echo "$RATIOS_FC2" || echo "$RATIOS_LENET5")
      for ratio in $ratios; do
        name="${net}_${kind}_r${ratio}_seed=$seed"
        [[ -f "$RUNS/$name/result.json" ]] || python -m tnjax.compress --from "$RUNS/source_${net}_seed=$seed" \
          --plan "experiments/plans/by_ratio.py:net=$net,kind=$kind,ratio=$ratio" \
          --workdir "$RUNS/$name" --finetune_epochs "$FINETUNE" --noconfig.progress_bar || true
        if [[ -f "$RUNS/$name/result.json" ]]; then
          python -m tnjax.train \
            --config "experiments/plans/from_scratch.py:run=$RUNS/$name,epochs=$((EPOCHS + FINETUNE))" \
            --workdir "$RUNS/scratch_$name" --noconfig.progress_bar
        fi
      done
    done
  done
done
