"""Exported artefacts and tnjax.load_predict take the data set's own examples and give the
run's own test predictions: the whole eval pipeline is inside, at any batch size."""

import jax
import numpy as np
import pytest
from flax import nnx

from tnjax import errors, models
from tnjax.compression import load, load_predict, serving
from tnjax.configs import cpac_mnist, sketch_cifar10, sketch_mnist, tt_mnist
from tnjax.data import memory
from tnjax.training import checkpoint, optim, trainer

pytestmark = pytest.mark.slow


def _saved_run(workdir, config, fitted_on=None):
  """A run's files as the trainer leaves them (random weights: no training needed); its
  preprocessing fitted on `fitted_on` (a data config; default: config.data)."""
  image_shape, classes = memory.nominal_shape(config.data)
  model = models.build_model(config.model, image_shape, classes, rngs=nnx.Rngs(1))
  schedule = optim.make_schedule(config.schedule, 10, config.num_epochs)
  optimizer = nnx.Optimizer(model, optim.make_optimizer(config.optimizer, schedule), wrt=nnx.Param)
  _, state = nnx.split({"model": model, "optimizer": optimizer})
  saver = checkpoint.Checkpointer(workdir / "checkpoints", async_save=False)
  saver.save(1, state, config.to_dict())
  saver.close()
  dataset = memory.load_dataset(fitted_on or config.data)
  from tnjax.data import eval_pipeline

  serving.write_input_pipeline(workdir, eval_pipeline.record(config.data), dataset.preprocessing)
  return dataset


# One config per pipeline the configs use: x/255 + pad + mean image; x/255; [-1, 1];
# per-channel standardisation. (GCN + ZCA, tt_cifar10's, is the same replay function,
# tested against memory.py in tests/data/test_eval_pipeline.py at a size where ZCA is cheap.)
@pytest.mark.parametrize(
  "config_module",
  [tt_mnist, sketch_mnist, cpac_mnist, sketch_cifar10],
  ids=lambda m: m.__name__.rsplit(".", 1)[-1],
)
def test_the_artefact_on_raw_examples_equals_the_model_on_the_trainers_inputs(
  tmp_path, config_module
):
  config = config_module.get_config("synthetic,runlocal")
  dataset = _saved_run(tmp_path, config)
  _, (raw, _), _ = memory.load_raw_splits(config.data)
  model, config = load(str(tmp_path))
  pipeline, arrays = serving.run_input_pipeline(str(tmp_path), config)
  exported = jax.export.deserialize(bytearray(serving.export_model(model, pipeline, arrays)))
  expected = np.asarray(model(dataset.test_images[:7]))
  tolerance = 1e-5
  for batch in (1, 7):
    logits = np.asarray(exported.call(raw[:batch]))
    np.testing.assert_allclose(logits, expected[:batch], rtol=tolerance, atol=tolerance)


def test_a_trained_run_served_raw_gives_its_own_test_accuracy(tmp_path):
  config = tt_mnist.get_config("synthetic,runlocal")
  result = trainer.train(config, tmp_path / "run").result
  predict = load_predict(str(tmp_path / "run"))
  _, (raw, labels), _ = memory.load_raw_splits(predict.config.data)
  accuracy = float(np.mean(np.argmax(predict(raw), -1) == labels))
  assert accuracy == result["test_accuracy"]
  exported = jax.export.deserialize(
    bytearray(
      serving.export_model(
        predict.model,
        predict.pipeline,
        serving.run_input_pipeline(str(tmp_path / "run"), predict.config)[1],
      )
    )
  )
  np.testing.assert_array_equal(np.argmax(exported.call(raw), -1), np.argmax(predict(raw), -1))
  with pytest.raises(
    errors.UserError, match=r"predict takes uint8 examples shaped \(batch, 28, 28, 1\)"
  ):
    predict(raw.astype(np.float32) / 255)


def test_a_run_made_before_pipelines_were_recorded_gets_its_arrays_fitted_again(tmp_path, capsys):
  config = tt_mnist.get_config("synthetic,runlocal")
  dataset = _saved_run(tmp_path, config)
  (tmp_path / "input_pipeline.json").unlink()
  (tmp_path / "preprocessing.npz").unlink()
  pipeline, arrays = serving.run_input_pipeline(str(tmp_path), config)
  assert "fitting them again on its train split" in capsys.readouterr().err
  assert [s["op"] for s in pipeline["steps"]] == ["scale", "pad", "subtract_mean"]
  np.testing.assert_array_equal(arrays["mean_image"], dataset.preprocessing["mean_image"])


def test_the_tflite_model_takes_the_same_raw_examples(tmp_path):
  tf = pytest.importorskip("tensorflow")
  config = tt_mnist.get_config("synthetic,runlocal")
  dataset = _saved_run(tmp_path, config)
  _, (raw, _), _ = memory.load_raw_splits(config.data)
  model, config = load(str(tmp_path))
  pipeline, arrays = serving.run_input_pipeline(str(tmp_path), config)
  interpreter = tf.lite.Interpreter(model_content=serving.export_tflite(model, pipeline, arrays))
  x = raw[:3]
  given = interpreter.get_input_details()[0]
  assert given["dtype"] == np.uint8
  interpreter.resize_tensor_input(given["index"], x.shape)
  interpreter.allocate_tensors()
  interpreter.set_tensor(given["index"], x)
  interpreter.invoke()
  logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
  np.testing.assert_allclose(logits, model(dataset.test_images[:3]), rtol=1e-5, atol=1e-5)


def test_evaluate_prepares_the_test_images_with_the_runs_own_fitted_mean(tmp_path, capsys):
  """A run whose config now reads fewer training examples (a fine-tune on a subset, a
  continued run) is evaluated with the mean image its weights were trained against, as
  export and load_predict serve it, not one fitted again on the subset."""
  from tnjax.compression import evaluate_export  # pylint: disable=g-import-not-at-top
  from tnjax.training import evaluation  # pylint: disable=g-import-not-at-top

  full = tt_mnist.get_config("synthetic,runlocal")
  subset = full.copy_and_resolve_references()
  subset.data.max_train_examples = 16
  dataset = _saved_run(tmp_path, subset, fitted_on=full.data)
  model, _ = load(str(tmp_path))
  logits = model(dataset.test_images)
  expected = float(np.mean(np.asarray(evaluation.cross_entropy(logits, dataset.test_labels))))
  refitted = memory.load_dataset(subset.data)
  wrong = float(
    np.mean(np.asarray(evaluation.cross_entropy(model(refitted.test_images), refitted.test_labels)))
  )
  assert abs(wrong - expected) > 1e-4  # the subset's mean really differs
  metrics = evaluate_export.evaluate_run(str(tmp_path))
  np.testing.assert_allclose(metrics["test_loss"], expected, rtol=1e-5)
  # --merge writes the weights only, and says where the inputs' mean image is; a second
  # --merge to the same file says it replaces it.
  merged = str(tmp_path / "merged.npz")
  evaluate_export.evaluate_run(str(tmp_path), merge=merged)
  assert "holds the weights only" in capsys.readouterr().err
  assert "mean_image" not in np.load(merged).files
  evaluate_export.evaluate_run(str(tmp_path), merge=merged)
  err = capsys.readouterr().err
  assert f"--merge {merged} exists and will be replaced" in err
  assert "preprocessing.npz's mean_image" in err
  # A run that lost its arrays is evaluated with them fitted again, and says so.
  (tmp_path / "preprocessing.npz").unlink()
  evaluate_export.evaluate_run(str(tmp_path))
  assert "has no recorded mean_image" in capsys.readouterr().err
