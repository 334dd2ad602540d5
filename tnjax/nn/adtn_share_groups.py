"""One ADTN generator for several layers, from configs: layers whose ADTNSpec names the
same `share` group read their weights from one SharedADTN.

  config.model.layers = {"fc6": {"kind": "adtn", "share": "fc"},
                         "fc7": {"kind": "adtn", "share": "fc"}}

A generator needs every weight size of its group before the first layer is built,
so `tnjax.models.build_model` builds such a model twice: once abstractly
(`collecting`: each shared layer records its size and spec, no arrays made), then
for real (`providing`: the generators exist, and each layer gets its generator and
offset in build order).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses

from tnjax.nn.adtn_generator import SharedADTN
from tnjax.nn.adtn_generator import ADTNSpec

_STATE = contextvars.ContextVar("tnjax_adtn_share_groups", default=None)
# Fields that decide the generator itself: the layers of one group must agree on them.
_GENERATOR_FIELDS = ("layers", "nonlinearity", "init_noise", "remat", "scan_layers")


@dataclasses.dataclass
class Groups:
  """Per share group, in build order: the weight sizes and the spec of the generator."""

  sizes: dict = dataclasses.field(default_factory=dict)
  specs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Providing:
  generators: dict
  taken: dict


@contextlib.contextmanager
def collecting():
  """Records the shared layers built inside; yields their Groups."""
  groups = Groups()
  token = _STATE.set(groups)
  try:
    yield groups
  finally:
    _STATE.reset(token)


@contextlib.contextmanager
def providing(groups: Groups, *, rngs, param_dtype=None):
  """Creates one SharedADTN per group; the shared layers built inside read from them."""
  extra = {} if param_dtype is None else {"param_dtype": param_dtype}
  generators = {
    name: SharedADTN(sizes, groups.specs[name], rngs=rngs, **extra)
    for name, sizes in groups.sizes.items()
  }
  token = _STATE.set(_Providing(generators, dict.fromkeys(generators, 0)))
  try:
    yield generators
  finally:
    _STATE.reset(token)


def shared_source(spec: ADTNSpec, size: int) -> dict:
  """The `generator` / `offset` arguments of a layer of `spec.share`'s group ({} while
  collecting: the abstract first build gives every layer its own gates)."""
  state = _STATE.get()
  if state is None:
    raise ValueError(
      f"ADTNSpec.share={spec.share!r}: shared generators are made by "
      "tnjax.models.build_model; build the model through it (or pass generator= yourself)."
    )
  if isinstance(state, Groups):
    first = state.specs.setdefault(spec.share, spec)
    different = [f for f in _GENERATOR_FIELDS if getattr(first, f) != getattr(spec, f)]
    if different:
      raise ValueError(
        f"Layers sharing ADTN group {spec.share!r} disagree on {different}: one "
        "generator has one depth and nonlinearity; make them equal."
      )
    state.sizes.setdefault(spec.share, []).append(size)
    return {}
  generator = state.generators[spec.share]
  index = state.taken[spec.share]
  state.taken[spec.share] += 1
  return {"generator": generator, "offset": generator.offsets[index]}
