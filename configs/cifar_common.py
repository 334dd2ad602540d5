"""The CIFAR-10/100 training setting shared by the zoo configs (not a config itself).

Per-channel standardisation, on-device crop + flip augmentation, SGD momentum 0.9
with weight decay 5e-4 and a cosine learning rate from 0.05, batch 128.
"""

from tnjax import config_lib


def parse(arg, **extra):
  return config_lib.parse_arg(arg, epochs=200, runlocal=False, synthetic=False, **extra)


def cifar_config(args, dataset: str, model: dict):
  c = config_lib.base_config()
  c.data.source, c.data.name, c.data.scale, c.data.augment = "tfds", dataset, "standardize", "crop_flip"
  if args.synthetic:
    c.data.synthetic.update(image_shape=(32, 32, 3),
                            num_classes=100 if dataset == "cifar100" else 10)
  config_lib.apply_offline_source(c, False, args.synthetic)
  c.model.update(model)
  c.num_epochs = args.epochs
  c.batch_size = 128
  c.optimizer.update(name="sgd", momentum=0.9, weight_decay=5e-4)
  c.schedule.update(name="cosine", learning_rate=0.05, end_learning_rate=0.0)
  c.log_every_steps = 100
  if args.runlocal:
    config_lib.shrink_for_smoke_run(c)
  return c


def adtn_fc_layers(args) -> dict:
  """FC6 and FC7 (the big linear layers the ADTN paper compresses), each with its own ADTN."""
  if args.dense:
    return {}
  return {name: {"kind": "adtn", "layers": args.layers} for name in ("fc6", "fc7")}
