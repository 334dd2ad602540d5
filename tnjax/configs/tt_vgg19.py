r"""Novikov et al. (2015) ImageNet VGG-19 with TT / matrix-rank FC layers.

  python -m tnjax.train --config configs/tt_vgg19.py:arch=tt4_fc_fc --workdir runs/vgg19_tt4

arch (FC6_FC7_FC8): fc_fc_fc, tt4_fc_fc, tt2_fc_fc, tt1_fc_fc, tt4_tt4_fc, mr1_fc_fc,
mr5_fc_fc, mr50_fc_fc. The printed layer table shows the paper's compression
exactly: FC6 TT4 50,972x; FC6+FC7 TT4 TT4 37,732x (the 'compressed layers' row).
The paper's error table is for VGG-16 (configs/tt_vgg16.py); it reports VGG-19
results of the same kind.

Needs TFDS imagenet2012 (manual download; data.data_dir may be gs://; prepare it with
launch/prepare_data.sh). ImageNet is streamed per process (data.source='tfds_stream',
tnjax/data/stream.py). The paper fine-tunes from the trained dense
VGG: give its weights with --config.pretrained.path=vgg16.npz (arrays named
'conv1_1/kernel', ...; tnjax/training/pretrained.py).
Only FC6-FC8 train unless `train_all` (as configs/tt_vgg16.py).
Arguments: arch, epochs=30, train_all, normalization, runlocal, synthetic.
"""

from tnjax.configs import tt_vgg16, vgg_common


def get_config(arg=None):
  """Data, epochs, batch, optimizer and schedule exactly as configs/tt_vgg16.py."""
  return tt_vgg16.vgg_config(arg, depth=19)


sweep = vgg_common.sweep
