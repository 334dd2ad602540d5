"""A user's flax layer options that change how it computes: its own dot_general, dtype
promotion or accumulation type. A factorised layer does not call them, so a source layer
that sets one would compute differently once converted, and is refused instead."""

from __future__ import annotations

import inspect

CALL_OPTIONS = (
  "dot_general",
  "dot_general_cls",
  "conv_general_dilated",
  "conv_general_dilated_cls",
  "einsum_op",
  "promote_dtype",
  "preferred_element_type",
)


def custom_call_options(layer, defaults: dict | None = None) -> list[str]:
  """The CALL_OPTIONS `layer` sets to other than `defaults` (an NNX layer's: its
  constructor's defaults; a Linen layer passes its dataclass fields' defaults)."""
  if defaults is None:
    parameters = inspect.signature(type(layer).__init__).parameters
    defaults = {name: p.default for name, p in parameters.items()}
  return [
    name
    for name in CALL_OPTIONS
    if name in defaults and getattr(layer, name, defaults[name]) is not defaults[name]
  ]
