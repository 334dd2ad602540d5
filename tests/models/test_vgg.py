"""VGG-16/19: exact parameter counts, Novikov's compression table, BatchNorm training."""

import pytest
from flax import nnx

from tnjax.configs import tt_vgg16, tt_vgg19, vgg_common
from tnjax import models
from tnjax.nn import format_table, layer_rows, total_params


def _abstract(config, image_shape=(224, 224, 3), classes=1000):
  return nnx.eval_shape(
    lambda: models.build_model(config.model, image_shape, classes, rngs=nnx.Rngs(0))
  )


def test_dense_vgg_parameter_counts_are_the_published_ones():
  assert total_params(_abstract(tt_vgg16.get_config("arch=fc_fc_fc"))) == 138_357_544
  assert total_params(_abstract(tt_vgg19.get_config("arch=fc_fc_fc"))) == 143_667_240


@pytest.mark.parametrize(
  "arch, fc6, compressed, network",
  [
    ("tt4_fc_fc", 50_972, 50_972, 3.9),
    ("tt2_fc_fc", 194_622, 194_622, None),
    ("tt1_fc_fc", 713_614, 713_614, None),
    ("tt4_tt4_fc", 50_972, 37_732, 7.4),
    ("mr1_fc_fc", 3_521, 3_521, None),
    ("mr5_fc_fc", 704, 704, None),
    ("mr50_fc_fc", 70, 70, None),
  ],
)
def test_tt_vgg16_table_shows_novikovs_compression(arch, fc6, compressed, network):
  model = _abstract(tt_vgg16.get_config(f"arch={arch}"))
  rows = {r["name"]: r for r in layer_rows(model)}
  assert int(rows["fc6"]["compression"]) == fc6
  table = format_table(model)
  compressed_line = next(l for l in table.splitlines() if l.startswith("compressed layers"))
  assert f"{compressed:,}." in compressed_line
  total_line = table.splitlines()[-1]
  dense_total = 138_357_544
  if network is not None:
    assert round(dense_total / total_params(model), 1) == network
    assert f"{dense_total / total_params(model):.2f}" in total_line


def test_bad_arch_names_the_fix():
  with pytest.raises(ValueError, match="arch layer 'tx4' is unknown; use fc, ttR or mrR"):
    vgg_common.fc_layers("tx4_fc_fc")
  with pytest.raises(ValueError, match="must name FC6, FC7 and FC8"):
    vgg_common.fc_layers("tt4_fc")
