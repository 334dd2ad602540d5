"""Novikov et al.'s configs build with the paper's parameter counts."""

import warnings

from flax import nnx

from tnjax import models
from tnjax.configs import tt_mnist
from tnjax.nn import layer_rows, total_params


def _build(config, image_shape=(32, 32, 1), classes=10):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # clipped ranks warn
    return nnx.eval_shape(
      lambda: models.build_model(config.model, image_shape, classes, rngs=nnx.Rngs(0))
    )


def _weights(model, name):
  return {r["name"]: r for r in layer_rows(model)}[name]["weights"]


def test_paper_ranks_keep_every_bond_and_give_the_papers_counts():
  # 2^10 modes at rank 8: 2 boundary cores 1x2x2x8 and 8 inner 8x2x2x8.
  paper = _build(tt_mnist.get_config("shape=2x2x2x2x2x2x2x2x2x2,rank=8,paper_ranks"))
  clipped = _build(tt_mnist.get_config("shape=2x2x2x2x2x2x2x2x2x2,rank=8"))
  assert _weights(paper, "hidden") == 2 * 32 + 8 * 256 == 2112
  assert _weights(clipped, "hidden") == 1824


def test_figure1_sweep_has_five_shape_families_at_paper_ranks():
  points = tt_mnist.sweep()
  shapes = list(dict.fromkeys(p["model.layers.hidden.in_shape"] for p in points))
  assert shapes == [(32, 32), (4, 8, 8, 4), (4, 4, 4, 4, 4), (2, 2, 8, 8, 2, 2), (2,) * 10]
  assert all(p["model.layers.hidden.clip_ranks"] is False for p in points)
  assert len(points) == 5 * 4


def test_hashednet_point_has_the_papers_totals_at_rank_8_and_6():
  for rank, total in ((8, 12_602), (6, 7_698)):
    model = _build(tt_mnist.get_config(f"hashednet,rank={rank}"))
    assert total_params(model) == total
    assert {r["kind"] for r in layer_rows(model)} == {"tt"}
