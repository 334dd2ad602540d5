"""Novikov et al.'s ImageNet VGG FC variants (shared by tt_vgg16 / tt_vgg19; not a config itself).

`arch` names the three FC layers (FC6, FC7, FC8): 'fc' dense, 'ttR' a TT-layer of
rank R, 'mrR' matrix rank R. FC6 (25088 x 4096) uses input modes 2x7x8x8x7x4 and
output modes 4^6; FC7 (4096 x 4096) uses 4^6 x 4^6, as in the paper.
"""

FC6_SHAPES = {"in_shape": (2, 7, 8, 8, 7, 4), "out_shape": (4, 4, 4, 4, 4, 4)}
FC7_SHAPES = {"in_shape": (4, 4, 4, 4, 4, 4), "out_shape": (4, 4, 4, 4, 4, 4)}
ARCHS = (
  "fc_fc_fc",
  "tt4_fc_fc",
  "tt2_fc_fc",
  "tt1_fc_fc",
  "tt4_tt4_fc",
  "mr1_fc_fc",
  "mr5_fc_fc",
  "mr50_fc_fc",
)
# Novikov et al. 2015 (PAPERS.md): top-1 / top-5 error (%) of VGG-16 on ImageNet.
PAPER_VGG16_ERRORS = {
  "fc_fc_fc": (30.9, 11.2),
  "tt4_fc_fc": (31.2, 11.2),
  "tt2_fc_fc": (31.5, 11.5),
  "tt1_fc_fc": (33.3, 12.8),
  "tt4_tt4_fc": (32.2, 12.3),
  "mr50_fc_fc": (36.7, 14.9),
}


def _layer(token: str, shapes: dict) -> dict:
  if token == "fc":
    return {"kind": "dense"}
  if token.startswith("tt"):
    return {"kind": "tt", "ranks": int(token[2:]), **shapes}
  if token.startswith("mr"):
    return {"kind": "lowrank", "rank": int(token[2:])}
  raise ValueError(f"arch layer {token!r} is unknown; use fc, ttR or mrR (e.g. tt4).")


def fc_layers(arch: str) -> dict:
  """config.model.layers for an arch string such as 'tt4_tt4_fc'."""
  tokens = arch.split("_")
  if len(tokens) != 3:
    raise ValueError(f"arch={arch!r} must name FC6, FC7 and FC8, e.g. tt4_fc_fc; known: {ARCHS}.")
  if tokens[2] != "fc":
    raise ValueError(f"arch={arch!r}: FC8 (the classifier) stays dense in Novikov et al.'s table.")
  layers = {"fc6": _layer(tokens[0], FC6_SHAPES), "fc7": _layer(tokens[1], FC7_SHAPES)}
  return {k: v for k, v in layers.items() if v["kind"] != "dense"}


def sweep():
  return [{"model.layers": fc_layers(arch)} for arch in ARCHS]
