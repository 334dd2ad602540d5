r"""Novikov et al. (2015) ImageNet VGG-16 with TT / matrix-rank FC layers.

  python -m tnjax.train --config configs/tt_vgg16.py:arch=tt4_fc_fc --workdir runs/vgg16_tt4

arch (FC6_FC7_FC8): fc_fc_fc, tt4_fc_fc, tt2_fc_fc, tt1_fc_fc, tt4_tt4_fc, mr1_fc_fc,
mr5_fc_fc, mr50_fc_fc. The printed layer table shows the paper's compression
exactly: FC6 TT4 50,972x; FC6+FC7 TT4 TT4 37,732x (the 'compressed layers' row);
whole network 3.9x / 7.4x (the 'total' row). Paper top-1 / top-5 error: FC 30.9 /
11.2, TT4 31.2 / 11.2, TT2 31.5 / 11.5, TT1 33.3 / 12.8, TT4 TT4 32.2 / 12.3, MR50
36.7 / 14.9 (fine-tuned from the trained dense VGG-16).

Needs TFDS imagenet2012 (manual download; data.data_dir may be gs://; prepare it with
launch/prepare_data.sh). ImageNet is streamed per process (data.source='tfds_stream',
tnjax/data/stream.py). The paper fine-tunes from the trained dense
VGG: give its weights with --config.pretrained.path=vgg16.npz (arrays named
'conv1_1/kernel', ...; tnjax/pretrained.py).
Arguments: arch, epochs=30, runlocal (32x32 synthetic smoke run), synthetic.
"""

from configs import vgg_common


def get_config(arg=None):
  return vgg_common.vgg_imagenet_config(arg, depth=16)


sweep = vgg_common.sweep
