"""The papers' networks, each built from layer specs so any layer can be swapped.

`build_model(model_config, image_shape, num_classes, rngs)` looks the network up
by `model_config.name`; every other field of model_config is passed to it.
"""

from __future__ import annotations


from flax import nnx

from tnjax.nn import adtn_share_groups
from tnjax.nn.spec import DTYPES

from tnjax.models.alexnet import AlexNet
from tnjax.models.cpac_cnn import CPACNet
from tnjax.models.fc2 import FC2
from tnjax.models.lenet import LeNet5
from tnjax.models.novikov_cifar import NovikovCNN, WideTTNet
from tnjax.models.small_cnn import SmallCNN
from tnjax.models.vgg import VGG

MODELS: dict[str, type[nnx.Module]] = {
  "alexnet": AlexNet,
  "fc2": FC2,
  "cpac_cnn": CPACNet,
  "lenet5": LeNet5,
  "novikov_cnn": NovikovCNN,
  "wide_tt": WideTTNet,
  "small_cnn": SmallCNN,
  "vgg": VGG,
}


def build_model(
  model_config, image_shape, num_classes: int, *, rngs: nnx.Rngs, dtype=None
) -> nnx.Module:
  """The zoo model `model_config` names, built (ADTN share groups included).

  Args:
    model_config: config.model: `name` plus that model's arguments (conv_layer,
      dense_layer, layers, ...).
    image_shape: (height, width, channels) of one input.
    num_classes: the classifier's width.
    rngs: the parameters' (and dropout's) keys.
    dtype: compute dtype (e.g. 'bfloat16') of every tnjax layer whose spec sets none;
      parameters stay float32 (each model passes it to every make_dense / make_conv).

  Returns:
    The NNX module.
  """
  fields = dict(model_config.to_dict() if hasattr(model_config, "to_dict") else model_config)
  name = fields.pop("name", None)
  if name not in MODELS:
    raise ValueError(f"config.model.name={name!r} is unknown; known models: {sorted(MODELS)}.")
  if dtype not in DTYPES:
    raise ValueError(f"config.dtype={dtype!r} is unknown; choose one of {DTYPES}.")

  def construct(rngs):
    try:
      layer_dtype = None if dtype in (None, "float32") else dtype  # float32: each input's own
      return MODELS[name](tuple(image_shape), num_classes, dtype=layer_dtype, rngs=rngs, **fields)
    except TypeError as e:
      raise ValueError(f"config.model has a field model {name!r} does not take: {e}") from e

  if not _share_groups(fields):
    return construct(rngs)
  # ADTN layers sharing generators: an abstract build finds each group's sizes first.
  with adtn_share_groups.collecting() as groups:
    nnx.eval_shape(lambda: construct(nnx.Rngs(0)))
  with adtn_share_groups.providing(groups, rngs=rngs):
    return construct(rngs)


def _share_groups(fields: dict) -> set:
  """The ADTN `share` groups the model's layer specs name (its defaults and per-layer ones)."""
  specs = [
    fields.get("conv_layer"),
    fields.get("dense_layer"),
    *(fields.get("layers") or {}).values(),
  ]
  return {s["share"] for s in specs if isinstance(s, dict) and s.get("share")}
