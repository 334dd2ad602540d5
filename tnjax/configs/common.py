"""Data settings and training recipes shared by the configs (not a config itself).

Inputs live here, and the two training recipes that configs compared with each other
must share (so that a baseline trains exactly like the layer it is measured against):
Novikov's MNIST recipe and the CIFAR cosine recipe. Each config states its own model
and any training it does not share.
"""

from __future__ import annotations

import ml_collections

from tnjax.training import schema as config_schema


def mnist_fc2_data(c: ml_collections.ConfigDict, args) -> None:
  """Novikov's MNIST inputs: 32x32 zero-padded, scaled to [0, 1], mean image subtracted.

  `args.fashion_idx` reads Debian's Fashion-MNIST IDX files; `args.synthetic` random images.
  """
  c.data.source, c.data.name = "tfds", "mnist"
  c.data.pad_to, c.data.scale, c.data.subtract_mean = 32, "unit", True
  config_schema.apply_offline_source(c, args.fashion_idx, args.synthetic)


def mnist_data(c: ml_collections.ConfigDict, args, scale: str = "unit") -> None:
  """28x28 MNIST inputs in `scale` ('unit' [0, 1] or 'symmetric' [-1, 1])."""
  c.data.source, c.data.name, c.data.scale = "tfds", "mnist", scale
  if args.synthetic:
    c.data.synthetic.image_shape = (28, 28, 1)
  config_schema.apply_offline_source(c, args.fashion_idx, args.synthetic)


def cifar_data(c: ml_collections.ConfigDict, args, dataset: str, augment: str = "crop_flip"):
  """CIFAR-10/100, per-channel standardised, with on-device crop + flip by default."""
  c.data.source, c.data.name, c.data.scale, c.data.augment = "tfds", dataset, "standardize", augment
  if args.synthetic:
    c.data.synthetic.update(
      image_shape=(32, 32, 3), num_classes=100 if dataset == "cifar100" else 10
    )
  config_schema.apply_offline_source(c, False, args.synthetic)


def adtn_layers(args, names=("fc6", "fc7")) -> dict:
  """ADTN specs for `names` (by default FC6 and FC7, the big linear layers the ADTN paper
  compresses): depth args.layers, args.nonlinearity between gate layers (if the config
  takes it), one generator for all of them with args.share, and the gate layers scanned
  rather than unrolled with args.scan (benchmarks/results/adtn_scan_cpu.md)."""
  if args.dense:
    return {}
  spec = {"kind": "adtn", "layers": args.layers}
  if "nonlinearity" in args:
    spec["nonlinearity"] = args.nonlinearity
  if args.get("share"):
    spec["share"] = "adtn"
  if args.get("scan"):
    spec["scan_layers"] = True  # compiles 3x faster, steps ~15% slower on CPU
  return {name: dict(spec) for name in names}


def novikov_mnist_training(c: ml_collections.ConfigDict, args) -> None:
  """Novikov et al.'s MNIST training, shared by FC-2 and its baselines (tt_mnist, mr_mnist,
  dense_mnist): batch 100, SGD momentum 0.9, weight decay 5e-4, learning rate log-spaced
  1e-2 -> 1e-5 over 45 epochs (or all of them, when a run has fewer), then held;
  args.epochs epochs. Call it last: with
  args.runlocal it shrinks the run to a smoke test."""
  c.num_epochs = args.epochs
  c.batch_size = 100
  c.optimizer.update(name="sgd", momentum=0.9, weight_decay=5e-4)
  c.schedule.update(name="logspace", learning_rate=1e-2, end_learning_rate=1e-5, decay_epochs=45)
  if args.runlocal:
    config_schema.shrink_for_smoke_run(c)


def cifar_cosine_training(c: ml_collections.ConfigDict, args) -> None:
  """The CIFAR training the TT and ADTN CIFAR configs share: batch 128, SGD momentum 0.9,
  weight decay 5e-4, cosine decay from 0.05 to 0; args.epochs epochs. Call it last: with
  args.runlocal it shrinks the run to a smoke test."""
  c.num_epochs = args.epochs
  c.batch_size = 128
  c.log_every_steps = 100
  c.optimizer.update(name="sgd", momentum=0.9, weight_decay=5e-4)
  c.schedule.update(name="cosine", learning_rate=0.05, end_learning_rate=0.0)
  if args.runlocal:
    config_schema.shrink_for_smoke_run(c)
