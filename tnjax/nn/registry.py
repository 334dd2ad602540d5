"""The one table of layer formats: (family, kind) -> layer class.

A layer class names its spec class (`spec_type`) and inherits its family
('dense' from FactorizedDense, 'conv' from FactorizedConv, 'embed' from FactorizedEmbed);
defining the class registers it (CompressedLayer.__init_subclass__), and tnjax.nn imports
every `*_dense.py`, `*_conv.py` and `*_embed.py` file in it. `make_dense` / `make_conv`
and `spec_from_config` read this table and nothing else, so a new format is
one spec class, one layer file and one tensor module.
"""

from __future__ import annotations

FAMILIES = ("dense", "conv", "embed")
_LAYERS: dict[tuple[str, str], type] = {}


def register(layer_class: type) -> type:
  """Adds a layer class under (its family, its spec's kind); refuses a second claimant."""
  family, spec_type = layer_class.family, layer_class.spec_type
  if family not in FAMILIES:
    raise ValueError(f"{layer_class.__name__}.family={family!r}; choose one of {FAMILIES}.")
  key = (family, spec_type.kind)
  existing = _LAYERS.get(key)
  if existing is not None and existing.__qualname__ != layer_class.__qualname__:
    raise ValueError(
      f"{layer_class.__name__} and {existing.__name__} both claim the {family} "
      f"form of kind {spec_type.kind!r}."
    )
  _LAYERS[key] = layer_class
  return layer_class


def kinds(family: str | None = None) -> list[str]:
  """The registered kinds, of one family or of all."""
  return sorted({kind for fam, kind in _LAYERS if family in (None, fam)})


def layer_class(family: str, kind: str) -> type:
  """The layer class of `kind` in `family`, or an error listing the kinds that family has."""
  if (family, kind) not in _LAYERS:
    form = {"dense": "dense (fully-connected)", "conv": "convolutional", "embed": "embedding"}.get(
      family, family
    )
    raise ValueError(f"Layer kind {kind!r} has no {form} form; {family} kinds: {kinds(family)}.")
  return _LAYERS[(family, kind)]


def spec_class(kind: str) -> type:
  """The spec class of a kind (shared by its dense and conv forms)."""
  for family in FAMILIES:
    if (family, kind) in _LAYERS:
      return _LAYERS[(family, kind)].spec_type
  raise ValueError(f"Unknown layer kind {kind!r}; known kinds: {kinds()}.")


def layers() -> dict[tuple[str, str], type]:
  """A copy of the table, for listings and contract tests."""
  return dict(_LAYERS)
