"""Checks every config field the trainer reads, before any data is loaded or step compiled.

Each problem is one line naming the field, its value and what would fix it.
"""

from __future__ import annotations

import math
import re

from tnjax.training import schema as config_schema
from tnjax import config_lib, errors, extras, fileio
from tnjax import models
from tnjax.training import optim
from tnjax.training import pretrained as pretrained_lib
from tnjax.data import augment as augment_lib
from tnjax.data import memory, tfds_source


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise errors.UserError(message)


def _int_at_least(config, dotted: str, low: int, hint: str = "") -> None:
  node = config
  for name in dotted.split("."):
    node = node[name]
  _require(
    isinstance(node, int) and not isinstance(node, bool) and node >= low,
    f"config.{dotted}={node!r} must be an integer >= {low}{hint}.",
  )


def _non_finite_fields(tree, prefix: str = ""):
  for key, value in tree.items():
    if hasattr(value, "items"):
      yield from _non_finite_fields(value, f"{prefix}{key}.")
    elif isinstance(value, float) and not math.isfinite(value):
      yield f"{prefix}{key}", value


def frozen_param_names(config) -> list[str]:
  """The parameters config.trainable freezes, in model order (an abstract build: no memory)."""
  from flax import nnx  # pylint: disable=g-import-not-at-top

  pattern = config.get("trainable", "")
  if not pattern:
    return []
  model = nnx.eval_shape(
    lambda: models.build_model(
      config.model, memory.nominal_shape(config.data)[0], 10, rngs=nnx.Rngs(0)
    )
  )
  names = ["/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]
  frozen = [n for n in names if not re.search(pattern, n)]
  return frozen if len(frozen) < len(names) else []  # none trained: optim says so in one line


def check_frozen_layers_are_loaded(config, *, files_present: bool = True) -> None:
  """A frozen layer keeps its initial values for the whole run: they must come from the
  pretrained file (or the config must say that random frozen layers are intended).
  `files_present=False` (the file may be only where the run trains): a path suffices."""
  pretrained = config.get("pretrained") or {}
  if pretrained.get("allow_random_frozen", False):
    return
  if pretrained.get("path") and not files_present:
    return
  frozen = frozen_param_names(config)
  if not frozen:
    return
  loaded, normalization = set(), None
  if pretrained.get("path"):
    names, normalization = pretrained_lib.describe_weights(pretrained.path)
    rename = pretrained.rename.to_dict()
    loaded = {rename.get(n, n) for n in names}
  layers = list(dict.fromkeys(n.rsplit("/", 1)[0] for n in frozen if n not in loaded))
  if layers:
    shown = ", ".join(layers) if len(layers) <= 8 else f"{', '.join(layers[:3])} ... {layers[-1]}"
    source = (
      f"{pretrained.path} does not set" if pretrained.get("path") else "no pretrained file sets"
    )
    raise errors.UserError(
      f"config.trainable={config.trainable!r} freezes {len(layers)} layer(s) that {source} "
      f"({shown}): they would stay at their random initialisation. Give their weights with "
      "--config.pretrained.path=FILE (.npz / .h5 named like the model, or a Keras "
      "applications VGG .h5 / .weights.h5), train every layer (config.trainable='', the VGG "
      "configs' train_all argument), or set --config.pretrained.allow_random_frozen=true if "
      "random frozen layers are what you want."
    )
  data = config.data
  if normalization and data.source == memory.STREAM_SOURCE and data.normalization != normalization:
    raise errors.UserError(
      f"{pretrained.path} expects {normalization!r} inputs (Keras VGG: BGR, 0-255, ImageNet "
      f"means subtracted), but config.data.normalization={data.normalization!r}; add "
      f"normalization={normalization} to the config's arguments or "
      f"--config.data.normalization={normalization}."
    )


def _check_synthetic(synthetic) -> None:
  shape = tuple(synthetic.image_shape)
  _require(
    len(shape) == 3 and all(isinstance(d, int) and d >= 1 for d in shape),
    f"config.data.synthetic.image_shape={shape!r} must be (height, width, channels), "
    "three positive integers, e.g. (28, 28, 1).",
  )
  for field, low in (("num_classes", 2), ("num_train", 1), ("num_test", 1)):
    value = synthetic[field]
    _require(
      isinstance(value, int) and not isinstance(value, bool) and value >= low,
      f"config.data.synthetic.{field}={value!r} must be an integer >= {low}.",
    )


def validate_config(config, *, data_present: bool = True) -> None:
  """Raises UserError on the first bad field the trainer would read; `data_present=False`
  leaves out whether prepared data and pretrained files are where the config says (a sweep
  planned on one host and trained on others)."""
  _check_counts(config)
  _check_data_sizes(config)
  _check_schedule(config)
  _check_data_source(config.data, data_present)
  _check_model_and_optimizer(config)
  _check_wandb(config)
  if (config.get("pretrained") or {}).get("path"):
    fileio.check_url(config.pretrained.path, "config.pretrained.path")
  check_frozen_layers_are_loaded(config, files_present=data_present)


def _check_counts(config) -> None:
  for name, value in _non_finite_fields(config):
    raise errors.UserError(f"config.{name}={value} is not a finite number.")
  _int_at_least(config, "num_epochs", 1)
  _int_at_least(config, "batch_size", 1)
  _int_at_least(config, "eval_batch_size", 1)
  _int_at_least(config, "log_every_steps", 1, " (steps between training-metric records)")
  _int_at_least(config, "checkpoint.every_steps", 0, " (0 saves at the end of every epoch)")
  _int_at_least(config, "checkpoint.keep", 1, " (how many checkpoints to keep)")
  _int_at_least(config, "seed", 0)
  _require(config.seed < 2**32, f"config.seed={config.seed} must be below 2**32 (4294967296).")


def _check_data_sizes(config) -> None:
  data = config.data
  for field in ("max_train_examples", "max_test_examples", "pad_to", "held_out_eval"):
    _int_at_least(config, f"data.{field}", 0, " (0 means all / none)")
  if data.source == "synthetic":
    _check_synthetic(data.synthetic)
  _require(
    not (data.get("held_out_eval", 0) and data.source == memory.STREAM_SOURCE),
    "config.data.held_out_eval needs an in-memory source (tfds, idx or synthetic), not "
    "tfds_stream; set it to 0.",
  )


def _check_schedule(config) -> None:
  for field in ("decay_epochs", "warmup_epochs", "decay_steps"):
    value = config.schedule[field]
    _require(
      config_lib.is_number(value) and value >= 0,
      f"config.schedule.{field}={value!r} must be a number >= 0.",
    )
  # A negative rate climbs the loss (then 'diverged', with the wrong advice), and a
  # log-spaced schedule takes log(rate): 0 is NaN. A rate of 0 elsewhere trains nothing,
  # on purpose (frozen weights); a negative weight decay grows the weights.
  logspace = config.schedule.get("name") == "logspace"
  checked = [
    ("schedule", "learning_rate", logspace),
    ("schedule", "end_learning_rate", logspace),
    ("optimizer", "weight_decay", False),
  ]
  for owner, field, positive in checked:
    value = config[owner].get(field, 1.0 if positive else 0.0)
    _require(
      config_lib.is_number(value) and (value > 0 if positive else value >= 0),
      f"config.{owner}.{field}={value!r} must be a number "
      + ("> 0 (e.g. 1e-3; the log-spaced schedule takes its log)." if positive else ">= 0."),
    )
  _require(
    config.schedule.get("warmup_epochs", 0) <= config.num_epochs,
    f"config.schedule.warmup_epochs={config.schedule.warmup_epochs} is longer than "
    f"config.num_epochs={config.num_epochs}; shorten the warm-up.",
  )


def _check_data_source(data, data_present: bool = True) -> None:
  sources = memory.SOURCES
  _require(
    data.source in sources,
    f"config.data.source={data.source!r} is unknown; choose one of {sources}.",
  )
  _require(
    data.scale in memory.SCALES,
    f"config.data.scale={data.scale!r} is unknown; choose one of {memory.SCALES}.",
  )
  _require(
    data.augment in augment_lib.AUGMENTATIONS,
    f"config.data.augment={data.augment!r} is unknown; choose one of {augment_lib.AUGMENTATIONS}.",
  )
  if data.source in memory.TFDS_SOURCES:
    for module in ("tensorflow", "tensorflow_datasets"):
      extras.check_installed(module, f"config.data.source={data.source!r}")
  if data.source == "tfds":
    _require(
      data.name in tfds_source.TFDS_NAMES,
      f"config.data.name={data.name!r} is not supported with data.source='tfds'; choose "
      f"one of {tfds_source.TFDS_NAMES}.",
    )
  if data.source == memory.STREAM_SOURCE:
    from tnjax.data import stream  # pylint: disable=g-import-not-at-top

    normalization = data.get("normalization", "imagenet")
    _require(
      normalization in stream.NORMALIZATIONS,
      f"config.data.normalization={normalization!r} is unknown; choose one of "
      f"{sorted(stream.NORMALIZATIONS)} (the pretrained weights' input convention).",
    )
    if data_present:
      stream.check_prepared(data)  # before anything else is read: the files come first
  if data.source == "idx":
    _require(
      bool(data.idx_dir),
      "config.data.source='idx' needs config.data.idx_dir, the directory of the IDX files.",
    )
    fileio.check_url(data.idx_dir, "config.data.idx_dir")


def _check_model_and_optimizer(config) -> None:
  for old, new in config_schema.RENAMED_MODEL_FIELDS.items():
    _require(
      old not in config.model,
      f"config.model.{old} was renamed: use config.model.{new} (every model takes "
      "conv_layer / dense_layer defaults and per-layer `layers`).",
    )
  _require(
    config.model.name in models.MODELS,
    f"config.model.name={config.model.name!r} is unknown; known models: {sorted(models.MODELS)}.",
  )
  _check_layer_specs(config.model)
  schedule = optim.make_schedule(config.schedule, 1, config.num_epochs)  # raises on bad names
  optim.make_optimizer(config.optimizer, schedule)
  try:
    re.compile(config.get("trainable", ""))
  except re.error as error:
    raise errors.UserError(
      f"config.trainable={config.trainable!r} is not a valid regex: {error}."
    ) from None


def _check_layer_specs(model) -> None:
  """Every layer spec in config.model (fields, types, ranges) as the model will read it, so
  that a misspelt field is refused before data loads (a sweep's points: before any trains)."""
  from tnjax.nn import spec_from_config  # pylint: disable=g-import-not-at-top

  specs = {name: model.get(name) for name in ("conv_layer", "dense_layer")}
  specs.update({f"layers.{k}": v for k, v in (model.get("layers") or {}).items()})
  for where, spec in specs.items():
    if spec is None:
      continue
    spec = spec.to_dict() if hasattr(spec, "to_dict") else spec
    try:
      spec_from_config(spec)
    except (ValueError, TypeError) as error:
      raise errors.UserError(f"config.model.{where}: {error}") from None


def _check_wandb(config) -> None:
  mode = config.wandb.mode
  _require(
    mode in config_schema.WANDB_MODES,
    f"config.wandb.mode={mode!r} is unknown; choose one of {config_schema.WANDB_MODES}.",
  )
  if mode != "disabled":
    extras.check_installed("wandb", f"config.wandb.mode={mode!r}")
