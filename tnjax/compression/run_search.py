"""The rank search for a trained run (`python -m tnjax.compress` with a measured budget):
a validation split held out of the run's training examples, and each candidate's
fine-tune an ordinary, resumable run under the compression's workdir.

The validation examples are the training examples just after those the source trained on
(a source trained with data.max_train_examples = N - V leaves V for this); when the source
used the whole split, the last V are held out of every fine-tune and the search says that
the source itself saw them. The test split is never read until the chosen model's report:
a candidate's run evaluates on the held-out examples (data.held_out_eval), and says so.
"""

from __future__ import annotations

import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tnjax import errors, fileio
from tnjax.compression.rank_search import Validation
from tnjax.training import run_files

SEARCH_DIR = "search"


def held_out(source_config, examples: int):
  """(raw images, labels, training examples the fine-tunes keep, whether the source saw
  the held-out ones)."""
  from tnjax.data import memory  # pylint: disable=g-import-not-at-top

  data = source_config.data.copy_and_resolve_references()
  with data.unlocked():
    data.max_train_examples, data.max_test_examples, data.held_out_eval = 0, 1, 0
  with errors.input_errors_are_user_errors():
    (images, labels), _, _ = memory.load_raw_splits(data)
  try:
    kept, _, held_images, held_labels, seen = memory.held_out_split(
      images, labels, examples, source_config.data.max_train_examples
    )
  except errors.UserError as e:
    raise errors.UserError(f"--validation_examples={examples}: {e}") from e
  return held_images, held_labels, len(kept), seen


def validation_for_run(
  source_dir, source_config, workdir, *, examples: int, finetune_epochs: int, overrides=None
) -> Validation:
  """The Validation a run's search measures with: loss and accuracy on held-out training
  examples (through the run's own input pipeline), fine-tunes as runs in WORKDIR/search."""
  from tnjax.compression import serving  # pylint: disable=g-import-not-at-top
  from tnjax.data import eval_pipeline  # pylint: disable=g-import-not-at-top

  raw, labels, keep, seen = held_out(source_config, examples)
  if seen:
    total = keep + examples
    trained = min(int(source_config.data.max_train_examples or total), total)
    print(
      f"  search: the last {examples:,} of the {total:,} training examples are held out of "
      f"every fine-tune as the validation split, but the source trained on {trained - keep:,} "
      f"of them (train it with --config.data.max_train_examples={keep} for a clean split).",
      flush=True,
    )
  pipeline, arrays = serving.run_input_pipeline(source_dir, source_config)
  images = np.asarray(eval_pipeline.apply(raw, pipeline, arrays))
  batch = int(source_config.eval_batch_size)
  measure = _measure(images, np.asarray(labels, np.int32), batch)
  search_dir = fileio.workdir_path(workdir) / SEARCH_DIR

  def finetune(model):
    return _finetune_run(
      model, source_config, search_dir, keep, examples, finetune_epochs, overrides
    )

  return Validation(
    loss=lambda m: measure(m)[0],
    accuracy=lambda m: measure(m)[1],
    finetune=finetune,
    example_input=images[:1],
    forward=lambda m, x: m(x),
    finetune_epochs=finetune_epochs,
    settings={"validation_examples": examples, "search_finetune_epochs": finetune_epochs},
  )


def _measure(images, labels, batch: int):
  """model -> (mean cross-entropy, accuracy) on the held-out examples."""
  from tnjax.training import evaluation  # pylint: disable=g-import-not-at-top

  def measure(model):
    model = nnx.clone(model)
    graphdef, state = nnx.split(model)
    step = jax.jit(lambda s, x, y, m: evaluation.eval_sums(nnx.merge(graphdef, s), x, y, m))

    def batches():
      for start in range(0, len(labels), batch):
        x, y = images[start : start + batch], labels[start : start + batch]
        mask = np.ones(len(y), np.float32)
        if len(y) < batch:  # one compiled shape: pad the last batch, masked out
          pad = batch - len(y)
          x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
          y, mask = (
            np.concatenate([y, np.zeros(pad, y.dtype)]),
            np.concatenate([mask, np.zeros(pad)]),
          )
        yield step(state, jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask))

    metrics = evaluation.sum_up(batches())  # named for the test split; here the held-out one
    return metrics["test_loss"], metrics["test_accuracy"]

  return measure


def _finetune_run(model, source_config, search_dir, keep, held, epochs, overrides):
  """Fine-tunes `model` as an ordinary run (resumable, locked) on the first `keep` training
  examples, evaluated on the `held` held-out ones (never the test split), in a directory
  named by its layers' specs; returns the trained model."""
  from tnjax.compression import load, workflow  # pylint: disable=g-import-not-at-top
  from tnjax.training import trainer  # pylint: disable=g-import-not-at-top

  rows = _rows(model)
  name = hashlib.sha1(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:12]
  run_dir = search_dir / f"finetune_{name}"
  init_path = run_dir / run_files.COMPRESSED_INIT
  config = workflow.compressed_config(source_config, rows, overrides or {}, epochs, init_path)
  with config.unlocked():  # trains on the kept examples, evaluates on the held-out ones
    config.data.max_train_examples, config.data.held_out_eval = keep, held
  if not init_path.exists():
    run_dir.mkdir(parents=True, exist_ok=True)
    flat = nnx.to_flat_state(nnx.state(model, nnx.Not(nnx.RngState)))
    fileio.write_npz(init_path, {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in flat})
  trainer.train(config, run_dir)
  return load(run_dir)[0]


def _rows(model) -> list[dict]:
  """{name, spec} of the model's compressed layers (what compressed_config takes)."""
  from tnjax.nn.dense_base import FactorizedDense  # pylint: disable=g-import-not-at-top
  from tnjax.nn.conv_base import FactorizedConv  # pylint: disable=g-import-not-at-top
  from tnjax.compression.convert import _plain  # pylint: disable=g-import-not-at-top

  return [
    {"name": "/".join(map(str, path)), "spec": _plain(layer.spec.to_config())}
    for path, layer in nnx.iter_modules(model)
    if path and isinstance(layer, (FactorizedDense, FactorizedConv))
  ]
