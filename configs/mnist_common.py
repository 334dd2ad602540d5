"""The MNIST FC-2 setting shared by tt_mnist, mr_mnist and dense_mnist (not a config itself)."""

from tnjax import config_lib

def parse(arg, **extra):
  return config_lib.parse_arg(arg, epochs=100, runlocal=False, fashion_idx=False,
                              synthetic=False, **extra)


def fc2_config(args, hidden_layer):
  """Novikov's MNIST training: 32x32 zero-padded, mean image subtracted, SGD
  momentum 0.9, batch 100, lr log-spaced 1e-2 -> 1e-5 over 45 epochs then held."""
  c = config_lib.base_config()
  c.data.source, c.data.name = "tfds", "mnist"
  c.data.pad_to, c.data.scale, c.data.subtract_mean = 32, "unit", True
  config_lib.apply_offline_source(c, args.fashion_idx, args.synthetic)
  c.model.name = "fc2"
  c.model.hidden_features = 1024
  c.model.hidden_layer = hidden_layer
  c.model.output_layer = {"kind": "dense"}
  c.num_epochs = args.epochs
  c.batch_size = 100
  c.optimizer.update(name="sgd", momentum=0.9, weight_decay=5e-4)
  c.schedule.update(name="logspace", learning_rate=1e-2, end_learning_rate=1e-5,
                    decay_epochs=min(45, args.epochs))
  if args.runlocal:
    config_lib.shrink_for_smoke_run(c)
  return c
