r"""Compress your own model, on real Fashion-MNIST: flax-style CNN and ViT (models.py),
trained with a plain optax loop, compressed by tnjax.compress at three ratios in three
formats, fine-tuned with the same loop, against the same compressed architecture trained
from scratch for the same total epochs; 3 seeds; resumable (one JSON per run, and a
killed training resumes at its last finished epoch).

  python experiments/own_model/study.py --workdir /work/runs/own_model --model cnn \
      --seeds 0,1,2 [--epochs 3 --finetune_epochs 1]
  python experiments/own_model/study.py --workdir /work/runs/own_model --model cnn \
      --formats tt --ratios 4,10        # one cell's seeds at a time
  python experiments/own_model/study.py --workdir /work/runs/own_model --report \
      --out experiments/results/own_model_fashion_mnist

Each result file says its epochs; --report writes the table (mean ± std over seeds), the
plot and the training-step times (compressed against its source, in the same process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

import tnjax  # noqa: E402
from tnjax import errors, extras, fileio  # noqa: E402
from tnjax.data import memory  # noqa: E402
from tnjax.training import optim  # noqa: E402

FORMATS = ("tt", "lowrank", "cp")
RATIOS = (4, 10, 30)
# Debian's dataset-fashion-mnist; elsewhere (a lent GPU machine) a folder of the same four files.
IDX_DIR = os.environ.get("FASHION_MNIST_IDX_DIR", "/usr/share/datasets/fashion-mnist")


def load_data():
  config = memory.default_data_config()
  config.update(source="idx", name="fashion_mnist", idx_dir=IDX_DIR)
  (train_x, train_y), (test_x, test_y), _ = memory.load_raw_splits(config)
  scale = lambda x: x.astype(np.float32) / 255.0  # noqa: E731
  return scale(train_x), train_y.astype(np.int32), scale(test_x), test_y.astype(np.int32)


def make_steps():
  """The user's own loop: nnx.Optimizer, nnx.value_and_grad, nnx.jit."""

  @nnx.jit
  def train_step(model, optimizer, x, y):
    def loss_fn(model):
      logits = model(x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  @nnx.jit
  def predict(model, x):
    return jnp.argmax(model(x), -1)

  return train_step, predict


def train(
  model, data, epochs: int, seed: int, learning_rate: float, batch: int = 128, checkpoint=None
):
  """Adam, with the per-parameter rates a layer asks for (BTT's; none for the others).

  With `checkpoint` (a path), the model's and the optimizer's state are written there after
  every epoch and a later call resumes from it: a killed run loses at most one epoch, and
  the resumed run equals the uninterrupted one (batch order and dropout streams included).
  """
  train_x, train_y, _, _ = data
  tx = optim.with_layer_rates(optax.adam(learning_rate), model)
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  train_step, _ = make_steps()
  done = _resume(model, optimizer, checkpoint) if checkpoint is not None else 0
  model.train()
  for epoch in range(done, epochs):
    order = np.random.default_rng([seed, epoch]).permutation(len(train_y))
    for start in range(0, len(order) - batch + 1, batch):
      idx = order[start : start + batch]
      train_step(model, optimizer, jnp.asarray(train_x[idx]), jnp.asarray(train_y[idx]))
    if checkpoint is not None:
      _write_training_state(model, optimizer, epoch + 1, checkpoint)
  return model


def _training_arrays(model, optimizer) -> dict:
  """Every array a resumed run needs: weights, batch statistics, optimizer moments and the
  random streams' counters (their keys are fixed by the seed, and typed keys do not fit .npz)."""
  arrays = {}
  for prefix, owner in (("model", model), ("optimizer", optimizer)):
    for key, variable in nnx.to_flat_state(nnx.state(owner, nnx.Not(nnx.RngKey))):
      arrays["/".join((prefix, *map(str, key)))] = variable
  return arrays


def _write_training_state(model, optimizer, epochs_done: int, path) -> None:
  arrays = {k: np.asarray(v.get_value()) for k, v in _training_arrays(model, optimizer).items()}
  fileio.write_npz(path, {**arrays, "epochs_done": np.asarray(epochs_done)})


def _resume(model, optimizer, path) -> int:
  """Load `path`'s state into model and optimizer; the number of epochs it had done (0 if
  there is no such file yet)."""
  saved = fileio.read_npz(path)
  if not saved:
    return 0
  for name, variable in _training_arrays(model, optimizer).items():
    variable.set_value(jnp.asarray(saved[name]))
  return int(saved["epochs_done"])


def accuracy(model, data) -> float:
  _, _, test_x, test_y = data
  _, predict = make_steps()
  model.eval()
  hits = sum(
    int(jnp.sum(predict(model, jnp.asarray(test_x[i : i + 1000])) == test_y[i : i + 1000]))
    for i in range(0, len(test_y), 1000)
  )
  return hits / len(test_y)


def step_ms(model, data, batch: int = 128, repeats: int = 30) -> float:
  """Median ms of one training step of `model` (after compiling)."""
  train_x, train_y, _, _ = data
  optimizer = nnx.Optimizer(nnx.clone(model), optax.adam(1e-3), wrt=nnx.Param)
  copy = optimizer.model if hasattr(optimizer, "model") else nnx.clone(model)
  train_step, _ = make_steps()
  x, y = jnp.asarray(train_x[:batch]), jnp.asarray(train_y[:batch])
  jax.block_until_ready(train_step(copy, optimizer, x, y))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(train_step(copy, optimizer, x, y))
    times.append(1000 * (time.perf_counter() - start))
  return float(np.median(times))


def plan_for(model_name: str, kind: str, ratio: float) -> dict:
  """Every planned layer in `kind`; "lowrank" convs are Tucker-2 (a conv's low-rank form)."""
  conv = {"lowrank": "tucker"}.get(kind, kind)
  return {
    name: {"kind": conv if name.startswith("conv") else kind, "ratio": ratio}
    for name in models.PLANNED[model_name]
  }


def _save(model, path):
  """The model's weights and batch statistics (not its random streams) as .npz."""
  state = nnx.state(model, nnx.Not(nnx.RngState))
  arrays = {"/".join(map(str, k)): np.asarray(v.get_value()) for k, v in nnx.to_flat_state(state)}
  fileio.write_npz(path, arrays)


def _load(model, path):
  arrays = fileio.read_npz(path)
  state = nnx.state(model, nnx.Not(nnx.RngState))
  for key, variable in nnx.to_flat_state(state):
    variable.set_value(jnp.asarray(arrays["/".join(map(str, key))]))
  nnx.update(model, state)
  return model


def run_seed(
  workdir, model_name, seed, epochs, finetune_epochs, learning_rate, formats=FORMATS, ratios=RATIOS
):
  data = load_data()
  directory = fileio.workdir_path(workdir) / model_name / f"seed={seed}"
  directory.mkdir(parents=True, exist_ok=True)
  source_path = directory / "source.npz"
  build = lambda s: models.MODELS[model_name](rngs=nnx.Rngs(params=s, dropout=s + 1))  # noqa: E731
  if source_path.exists():
    source = _load(build(seed), source_path)
  else:
    start = time.time()
    partial = directory / "source.training.npz"
    source = train(build(seed), data, epochs, seed, learning_rate, checkpoint=partial)
    _save(source, source_path)
    partial.unlink(missing_ok=True)
    fileio.write_json(
      directory / "source.json",
      {
        "accuracy": accuracy(source, data),
        "epochs": epochs,
        "minutes": (time.time() - start) / 60,
        "params": sum(x.size for x in jax.tree.leaves(nnx.state(source, nnx.Param))),
      },
    )
  source_info = fileio.read_json(directory / "source.json")
  print(f"{model_name} seed {seed}: source {100 * source_info['accuracy']:.2f}%", flush=True)
  for kind in formats:
    for ratio in ratios:
      out = directory / f"{kind}_ratio={ratio}.json"
      if out.exists():
        continue
      start = time.time()
      compressed, rows = tnjax.compress(source, plan_for(model_name, kind, ratio))
      converted = accuracy(compressed, data)
      finetuned = accuracy(
        train(compressed, data, finetune_epochs, seed + 100, learning_rate), data
      )
      specs = {r["name"]: r["spec"] for r in rows}
      scratch_plan = {name: dict(spec) for name, spec in specs.items()}
      scratch, _ = tnjax.compress(build(seed + 1000), scratch_plan, fit=False, seed=seed + 1000)
      partial = directory / f"{kind}_ratio={ratio}.scratch.training.npz"
      train(scratch, data, epochs + finetune_epochs, seed + 200, learning_rate, checkpoint=partial)
      scratch_accuracy = accuracy(scratch, data)
      record = {
        "model": model_name,
        "format": kind,
        "ratio": ratio,
        "seed": seed,
        "weights_before": sum(r["weights_before"] for r in rows),
        "weights_after": sum(r["weights_after"] for r in rows),
        "params": sum(x.size for x in jax.tree.leaves(nnx.state(compressed, nnx.Param))),
        "source_accuracy": source_info["accuracy"],
        "converted_accuracy": converted,
        "finetuned_accuracy": finetuned,
        "scratch_accuracy": scratch_accuracy,
        "source_step_ms": step_ms(source, data),
        "compressed_step_ms": step_ms(compressed, data),
        "epochs": epochs,
        "finetune_epochs": finetune_epochs,
        "learning_rate": learning_rate,
        "minutes": (time.time() - start) / 60,
        "machine": f"{platform.machine()} {jax.devices()[0].platform}",
      }
      fileio.write_json(out, record)
      partial.unlink(missing_ok=True)
      print(json.dumps(record), flush=True)


def _mean_std(values) -> str:
  values = 100 * np.asarray(values, np.float64)
  return f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.2f}"


def report(workdir: str, out: str, seeds_planned: int = 3) -> str:
  """The table (mean ± std over seeds), the plot and the step times, from the result files."""
  records = []
  for model_name in sorted(models.MODELS):
    root = fileio.workdir_path(workdir) / model_name
    if not root.is_dir():
      continue
    for seed_dir in sorted(root.iterdir()):
      for path in sorted(seed_dir.iterdir()):
        if path.name.endswith(".json") and "_ratio=" in path.name:
          records.append(fileio.read_json(path))
  if not records:
    raise errors.UserError(
      f"{workdir} holds no study results (<model>/seed=<s>/<format>_ratio=<r>.json); run the "
      "study into it first."
    )
  lines = [
    "# Compress your own model: flax-style CNN and ViT on Fashion-MNIST",
    "",
    f"`python experiments/own_model/study.py --workdir {workdir} --report --out {out}`",
    "",
  ]
  first = records[0]
  lines += [
    f"Source and scratch trained with Adam {first['learning_rate']:g}, batch 128; source "
    f"{first['epochs']} epochs, then compressed by tnjax.compress (`ratio`, per layer) and "
    f"fine-tuned {first['finetune_epochs']} epoch(s) with the same loop; scratch: the same "
    f"compressed architecture from its own initialisation, {first['epochs'] + first['finetune_epochs']} "
    f"epochs. Test accuracy, mean ± std over seeds. Step: one training step at batch 128, "
    f"compressed / source, median of 30 in the same process. Machine: {first['machine']}, one core.",
    "",
    "Sources are retrained per session (only the records are kept); on another host's CPU "
    "XLA's float rounding differs, so a seed's source can differ between cells: each row "
    "gives the sources of its own runs.",
    "",
  ]
  for model_name in sorted({r["model"] for r in records}):
    rows = [r for r in records if r["model"] == model_name]
    lines += [
      f"## {model_name.upper()}",
      "",
      "| format | ratio | planned weights | runs | source | converted | fine-tuned | scratch "
      "| step vs source |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in FORMATS:
      for ratio in RATIOS:
        cell = [r for r in rows if r["format"] == kind and r["ratio"] == ratio]
        if not cell:
          continue
        step = np.median([r["compressed_step_ms"] / r["source_step_ms"] for r in cell])
        lines.append(
          f"| {kind} | {ratio}x | {cell[0]['weights_before']:,} -> {cell[0]['weights_after']:,} | "
          f"{len(cell)} of {seeds_planned} | {_mean_std([r['source_accuracy'] for r in cell])}% | "
          f"{_mean_std([r['converted_accuracy'] for r in cell])}% | "
          f"{_mean_std([r['finetuned_accuracy'] for r in cell])}% | "
          f"{_mean_std([r['scratch_accuracy'] for r in cell])}% | {step:.2f}x |"
        )
    lines.append("")
  text = "\n".join(lines)
  fileio.write_text(out + ".md", text)
  fileio.write_json(out + ".json", records)
  _plot(records, out + ".png")
  return text


def _plot(records, path) -> None:
  if not records:
    return
  extras.require("matplotlib", "the study's plot").use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  names = sorted({r["model"] for r in records})
  figure, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
  for axis, model_name in zip(axes[0], names):
    for kind, color in zip(FORMATS, ("C0", "C1", "C2")):
      for key, style in (("finetuned_accuracy", "-o"), ("scratch_accuracy", "--s")):
        points = []
        for ratio in RATIOS:
          cell = [
            r[key]
            for r in records
            if (r["model"], r["format"], r["ratio"]) == (model_name, kind, ratio)
          ]
          if cell:
            spread = np.std(cell, ddof=1) if len(cell) > 1 else 0.0  # as the table's
            points.append((ratio, 100 * np.mean(cell), 100 * spread))
        if points:
          x, y, e = zip(*points)
          label = f"{kind}, {'fine-tuned' if key.startswith('fine') else 'scratch'}"
          axis.errorbar(x, y, yerr=e, fmt=style, color=color, label=label, capsize=3)
    axis.set_xscale("log")
    axis.set_xticks(RATIOS, [f"{r}x" for r in RATIOS])
    axis.minorticks_off()
    axis.set_xlabel("compression of the planned layers (x)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(model_name.upper())
    axis.legend(fontsize=7)
  figure.tight_layout()
  figure.savefig(path, dpi=120)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--model", choices=sorted(models.MODELS), default="cnn")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--finetune_epochs", type=int, default=1)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--formats", default=",".join(FORMATS), help="a subset, comma-separated")
  parser.add_argument("--ratios", default=",".join(map(str, RATIOS)), help="a subset")
  parser.add_argument("--report", action="store_true", help="write the table, plot and JSON")
  parser.add_argument("--out", default="experiments/results/own_model_fashion_mnist")
  args = parser.parse_args(argv)
  if args.report:
    print(report(args.workdir, args.out, len(args.seeds.split(","))))
    return
  formats = tuple(args.formats.split(","))
  ratios = tuple(int(r) for r in args.ratios.split(","))
  if not set(formats) <= set(FORMATS) or not set(ratios) <= set(RATIOS):
    parser.error(f"--formats must be among {FORMATS} and --ratios among {RATIOS}")
  for seed in (int(s) for s in args.seeds.split(",")):
    run_seed(
      args.workdir,
      args.model,
      seed,
      args.epochs,
      args.finetune_epochs,
      args.learning_rate,
      formats,
      ratios,
    )


if __name__ == "__main__":
  sys.exit(errors.run_cli(main))
