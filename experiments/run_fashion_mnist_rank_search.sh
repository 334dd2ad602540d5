#!/usr/bin/env bash
# The rank-search study on real Fashion-MNIST (issue 33): LeNet-5 sources trained on the
# first 55,000 training examples (the last 5,000 are the search's validation split), then
# at 10x the equal-error allocation against the sensitivity one (both fine-tuned FINETUNE
# epochs), accuracy_drop=1.0 and a latency budget; SEEDS seeds.
set -euo pipefail
RUNS=${RUNS:-runs}/rank_search
EPOCHS=${EPOCHS:-10}
FINETUNE=${FINETUNE:-2}
SEEDS=${SEEDS:-0,1,2}
LATENCY=${LATENCY:-0.5}
HOLD=(--validation_examples 5000 --search_finetune_epochs 1 --noconfig.progress_bar)
for seed in ${SEEDS//,/ }; do
  src="$RUNS/source_lenet5_seed=$seed"
  python -m tnjax.train --config "configs/sketch_mnist.py:method=dense,fashion_idx,epochs=$EPOCHS" \
    --workdir "$src" --config.seed="$seed" --config.data.max_train_examples=55000 \
    --noconfig.progress_bar
  for plan in ratio=10 ratio=10,allocate=sensitivity drop=1.0 latency=$LATENCY; do
    name="lenet5_${plan//[=,]/_}_seed=$seed"
    [[ -f "$RUNS/$name/result.json" ]] || python -m tnjax.compress --from "$src" \
      --plan "experiments/plans/by_budget.py:$plan" --workdir "$RUNS/$name" \
      --finetune_epochs "$FINETUNE" "${HOLD[@]}" || true
  done
done
