r"""Novikov et al. (2015) ImageNet VGG-16 with TT / matrix-rank FC layers.

  python -m tnjax.train --config configs/tt_vgg16.py:arch=tt4_fc_fc --workdir runs/vgg16_tt4

arch (FC6_FC7_FC8): fc_fc_fc, tt4_fc_fc, tt2_fc_fc, tt1_fc_fc, tt4_tt4_fc, mr1_fc_fc,
mr5_fc_fc, mr50_fc_fc. The printed layer table shows the paper's compression
exactly: FC6 TT4 50,972x; FC6+FC7 TT4 TT4 37,732x (the 'compressed layers' row);
whole network 3.9x / 7.4x (the 'total' row). Paper top-1 / top-5 error: FC 30.9 /
11.2, TT4 31.2 / 11.2, TT2 31.5 / 11.5, TT1 33.3 / 12.8, TT4 TT4 32.2 / 12.3, MR50
36.7 / 14.9 (fine-tuned from the trained dense VGG-16).

As in the paper, only the FC layers train (`config.trainable="^(fc6|fc7|output)/"`):
the convolutional part keeps its pretrained weights, frozen (no update, no weight
decay). `train_all` trains every layer. The inputs follow the pretrained weights'
convention: data.normalization='imagenet' (torchvision) or 'caffe' (BGR, 0-255,
mean only: Caffe's VGG weights and their Keras conversions).

Needs TFDS imagenet2012 (manual download; data.data_dir may be gs://; prepare it with
launch/prepare_data.sh). ImageNet is streamed per process (data.source='tfds_stream',
tnjax/data/stream.py). The paper fine-tunes from the trained dense
VGG: give its weights with --config.pretrained.path=vgg16.npz (arrays named
'conv1_1/kernel', ...; tnjax/training/pretrained.py).
Arguments: arch, epochs=30, train_all, normalization=imagenet|caffe, runlocal (32x32
synthetic smoke run), synthetic.
"""

from tnjax import config_args
from tnjax.training import schema as config_schema
from tnjax.configs import vgg_common


def get_config(arg=None):
  return vgg_config(arg, depth=16)


def vgg_config(arg, depth: int):
  """The ImageNet VGG-`depth` run (tt_vgg19 uses it with depth=19)."""
  args = config_args.parse_arg(
    arg,
    arch="tt4_fc_fc",
    epochs=30,
    train_all=False,
    normalization="imagenet",
    runlocal=False,
    synthetic=False,
  )
  c = config_schema.base_config()
  # Streamed per process (tnjax/data/stream.py): ImageNet does not fit in memory.
  c.data.source, c.data.name, c.data.scale = "tfds_stream", "imagenet2012", "standardize"
  if args.synthetic or args.runlocal:
    c.data.source, c.data.name = "synthetic", "synthetic"
    c.data.synthetic.image_shape = (224, 224, 3) if not args.runlocal else (32, 32, 3)
    c.data.synthetic.num_classes = 1000
  c.data.normalization = args.normalization
  c.trainable = "" if args.train_all else r"^(fc6|fc7|output)/"
  c.model.name = "vgg"
  c.model.depth = depth
  c.model.variant = "imagenet"
  c.model.layers = vgg_common.fc_layers(args.arch)
  c.num_epochs = args.epochs
  c.batch_size = 128
  c.optimizer.update(name="sgd", momentum=0.9, weight_decay=5e-4)
  c.schedule.update(name="cosine", learning_rate=1e-2)
  if args.runlocal:
    config_schema.shrink_for_smoke_run(c)
    c.pretrained.allow_random_frozen = True  # a smoke run: random frozen convs are intended
    c.batch_size = 4
    for spec in c.model.layers.values():  # 32x32 smoke images: FC6 has 512 inputs, automatic modes
      for field in ("in_shape", "out_shape"):
        if field in spec:
          del spec[field]
  return c


sweep = vgg_common.sweep
