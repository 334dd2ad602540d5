"""The recorded eval pipeline, replayed in JAX on the data set's own examples, gives exactly
the inputs the trainer's pipeline gives (memory.load_dataset; stream.py's normalisation)."""

import numpy as np
import pytest

from tnjax.data import eval_pipeline, memory

# Every in-memory pipeline the configs use (scripts: tnjax.configs.*, synthetic inputs).
PIPELINES = {
  "unit": ((28, 28, 1), {"scale": "unit"}),
  "symmetric": ((28, 28, 1), {"scale": "symmetric"}),
  "novikov_mnist": ((28, 28, 1), {"scale": "unit", "pad_to": 32, "subtract_mean": True}),
  "standardize": ((32, 32, 3), {"scale": "standardize"}),
  "gcn_zca": ((8, 8, 3), {"scale": "standardize", "whiten": "gcn_zca"}),  # small: ZCA is d^3
}


def _data_config(shape, fields):
  config = memory.default_data_config()
  config.source = "synthetic"
  config.synthetic.image_shape = shape
  config.synthetic.num_train, config.synthetic.num_test = 256, 64
  config.update(fields)
  return config


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_the_replayed_pipeline_gives_the_trainers_inputs(name):
  config = _data_config(*PIPELINES[name])
  dataset = memory.load_dataset(config)
  _, (raw_test, _), _ = memory.load_raw_splits(config)
  pipeline = eval_pipeline.record(config)
  assert pipeline["input"] == {
    "shape": list(PIPELINES[name][0]),
    "dtype": "uint8",
    "range": [0, 255],
    "note": "",
  }
  assert eval_pipeline.needed_arrays(pipeline) <= set(dataset.preprocessing)
  replayed = np.asarray(eval_pipeline.apply(raw_test, pipeline, dataset.preprocessing))
  assert replayed.shape == dataset.test_images.shape
  if name == "gcn_zca":  # memory.py normalises in float64, the replay in float32
    np.testing.assert_allclose(replayed, dataset.test_images, rtol=1e-4, atol=1e-4)
  else:
    np.testing.assert_array_equal(replayed, dataset.test_images)


def test_the_record_lists_the_steps_in_the_trainers_order():
  config = _data_config(
    (28, 28, 1), {"scale": "standardize", "pad_to": 30, "whiten": "gcn_zca", "subtract_mean": True}
  )
  ops = [s["op"] for s in eval_pipeline.record(config)["steps"]]
  assert ops == ["scale", "pad", "gcn", "zca", "subtract_mean"]
  assert "pad to 30x30 -> GCN -> ZCA -> minus the train mean image" in eval_pipeline.describe(
    eval_pipeline.record(config)
  )


@pytest.mark.parametrize("normalization", ["imagenet", "caffe"])
def test_the_streamed_normalisation_equals_the_tf_pipeline(normalization):
  tf = pytest.importorskip("tensorflow")
  from tnjax.data import stream

  config = memory.default_data_config()
  config.update(
    source="tfds_stream",
    name="imagenet2012",
    image_size=8,
    resize_to=8,
    normalization=normalization,
  )
  image = np.random.default_rng(0).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
  encoded = tf.io.encode_png(image)
  expected, _ = stream._preprocess(  # pylint: disable=protected-access
    tf, encoded, 0, 0, training=False, size=8, resize_to=8, seed=0, normalization=normalization
  )
  pipeline = eval_pipeline.record(config)
  assert pipeline["input"]["shape"] == [8, 8, 3] and pipeline["input"]["dtype"] == "float32"
  replayed = eval_pipeline.apply(image[None].astype(np.float32), pipeline, {})
  np.testing.assert_allclose(np.asarray(replayed)[0], expected.numpy(), rtol=1e-6, atol=1e-5)
