r"""BTT MLPs against dense MLPs at equal training FLOPs (Qiu et al. 2024's claim, in kind):
the worked example's ViT (models.py) trained from scratch on real Fashion-MNIST, once with
its dense 64 -> 256 -> 64 MLPs and once with wider MLPs whose two layers are Block
Tensor-Train matrices (muP init and per-core learning rates, as the paper), sized so that
the MLPs' multiply-adds per token do not exceed the dense ones'; 3 seeds; resumable
(one JSON per run, and a killed run resumes at its last finished epoch).

  python experiments/own_model/btt_vit.py --workdir /work/runs/btt_vit --seeds 0,1,2
  python experiments/own_model/btt_vit.py --workdir /work/runs/btt_vit --report \
      --out experiments/results/btt_vit_fashion_mnist
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
import study  # noqa: E402

from tnjax import fileio  # noqa: E402
from tnjax.nn import BTTDense, BTTSpec  # noqa: E402

DIM, DENSE_MLP = 64, 256
# The BTT MLP: 64 -> 1536 -> 64, modes (8, 8) <-> (32, 48), rank 1 (Monarch-like): 2 x 15,360
# multiply-adds per token against the dense MLP's 2 x 16,384 (6x wider at 94% of the FLOPs).
BTT_MLP, BTT_RANK = 1536, 1
BTT_IN = BTTSpec(rank=BTT_RANK, in_shape=(8, 8), out_shape=(32, 48))
BTT_OUT = BTTSpec(rank=BTT_RANK, in_shape=(48, 32), out_shape=(8, 8))


def build(variant: str, seed: int):
  rngs = nnx.Rngs(params=seed, dropout=seed + 1)
  if variant == "dense":
    return models.ViT(rngs=rngs, dim=DIM, mlp_dim=DENSE_MLP)
  model = models.ViT(rngs=rngs, dim=DIM, mlp_dim=BTT_MLP)
  for block in model.blocks:
    block.mlp_in = BTTDense(DIM, BTT_MLP, BTT_IN, rngs=rngs)
    block.mlp_out = BTTDense(BTT_MLP, DIM, BTT_OUT, rngs=rngs)
  return model


def mlp_macs(model) -> int:
  """Multiply-adds per token of the MLP layers (dense: in x out; BTT: its weights)."""
  total = 0
  for block in model.blocks:
    for layer in (block.mlp_in, block.mlp_out):
      if isinstance(layer, BTTDense):
        total += layer.weight_params
      else:
        total += layer.kernel.shape[0] * layer.kernel.shape[1]
  return total


def run(workdir: str, seeds, epochs: int, learning_rate: float) -> None:
  data = study.load_data()
  for seed in seeds:
    for variant in ("dense", "btt"):
      out = fileio.workdir_path(workdir) / f"{variant}_seed={seed}.json"
      if out.exists():
        continue
      start = time.time()
      model = build(variant, seed)
      params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
      partial = out.parent / f"{variant}_seed={seed}.training.npz"
      study.train(model, data, epochs, seed, learning_rate, checkpoint=partial)
      record = {
        "variant": variant,
        "seed": seed,
        "accuracy": study.accuracy(model, data),
        "params": int(params),
        "mlp_macs_per_token": mlp_macs(model),
        "step_ms": study.step_ms(model, data),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "minutes": (time.time() - start) / 60,
        "machine": f"{platform.machine()} {jax.devices()[0].platform}",
      }
      out.parent.mkdir(parents=True, exist_ok=True)
      fileio.write_json(out, record)
      partial.unlink(missing_ok=True)
      print(record, flush=True)


def report(workdir: str, out: str, seeds_planned: int = 3) -> str:
  records = [
    fileio.read_json(path)
    for path in sorted(fileio.workdir_path(workdir).iterdir())
    if path.name.endswith(".json")
  ]
  lines = [
    "# BTT MLPs against dense MLPs at equal training FLOPs: the own-model ViT, Fashion-MNIST",
    "",
    f"Command: `python experiments/own_model/btt_vit.py --workdir {workdir} --seeds 0,1,2`; "
    f"machine {records[0]['machine'] if records else '-'}, one core; Adam, "
    f"{records[0]['learning_rate'] if records else '-'}, {records[0]['epochs'] if records else '-'} "
    "epochs from scratch, batch 128; test split (10,000 images).",
    "",
    f"Dense: MLP {DIM} -> {DENSE_MLP} -> {DIM}. BTT: MLP {DIM} -> {BTT_MLP} -> {DIM}, both "
    f"layers BTT rank {BTT_RANK} (modes 8x8 <-> 32x48), muP init and per-core learning rates.",
    "",
    "| variant | seeds | test accuracy | parameters | MLP multiply-adds / token | step ms |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for variant in ("dense", "btt"):
    rows = [r for r in records if r["variant"] == variant]
    if not rows:
      continue
    acc = 100 * np.asarray([r["accuracy"] for r in rows])
    spread = acc.std(ddof=1) if len(acc) > 1 else 0.0
    lines.append(
      f"| {variant} | {len(rows)} of {seeds_planned} | {acc.mean():.2f} ± {spread:.2f}% | "
      f"{rows[0]['params']:,} | {rows[0]['mlp_macs_per_token']:,} | "
      f"{np.median([r['step_ms'] for r in rows]):.1f} |"
    )
  text = "\n".join(lines) + "\n"
  fileio.write_text(out + ".md", text)
  fileio.write_json(out + ".json", records)
  return text


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--epochs", type=int, default=4)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--report", action="store_true")
  parser.add_argument("--out", default="experiments/results/btt_vit_fashion_mnist")
  args = parser.parse_args(argv)
  seeds = [int(s) for s in args.seeds.split(",")]
  if args.report:
    print(report(args.workdir, args.out, len(seeds)))
  else:
    run(args.workdir, seeds, args.epochs, args.learning_rate)


if __name__ == "__main__":
  main()
