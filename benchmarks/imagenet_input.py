r"""How fast ImageNet reaches the VGG configs: the streamed 224x224 input and the train step.

  python -m benchmarks.imagenet_input            # -> benchmarks/results/imagenet_input_<backend>.{md,json}

Input: tnjax.data.stream's own train preprocessing (JPEG decode, shorter side to 256,
random 224 crop, flip, Caffe normalisation) over tf.data with AUTOTUNE parallelism, on
random JPEGs of ImageNet's typical size (500x375), batch 128: images/s of the pipeline
alone. Step: tnjax.training.step.TrainStep of configs/tt_vgg16.py (TT4 FC6, FC6-FC8
trained over frozen convs) and of the all-dense fc_fc_fc head, at `--batch` (default 8
on a CPU, so a step fits in seconds), images/s. The ratio says how many input workers
(hosts' cores) one accelerator needs to stay fed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks.common import describe_machine, machine_line, record_end_load
from tnjax import config_lib, models
from tnjax.data import stream
from tnjax.training import optim
from tnjax.training import step as step_lib


def input_images_per_second(num_images: int, batch: int, batches: int) -> float:
  tf = stream._tf()  # pylint: disable=protected-access
  rng = np.random.default_rng(0)
  encoded = [
    tf.io.encode_jpeg(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).numpy()
    for _ in range(num_images)
  ]
  dataset = tf.data.Dataset.from_tensor_slices((encoded, np.zeros(num_images, np.int64)))
  dataset = dataset.repeat().enumerate()
  dataset = dataset.map(
    lambda i, xy: stream._preprocess(  # pylint: disable=protected-access
      tf,
      xy[0],
      xy[1],
      i,
      training=True,
      size=224,
      resize_to=256,
      seed=0,
      normalization="caffe",
    ),
    num_parallel_calls=tf.data.AUTOTUNE,
  )
  iterator = (
    dataset.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()
  )
  next(iterator)  # warm-up: thread pools and autotuning
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch / (time.perf_counter() - start)


def step_images_per_second(arch: str, batch: int, repeats: int) -> float:
  config = config_lib.load_config(f"configs/tt_vgg16.py:synthetic,arch={arch}")
  model = models.build_model(config.model, (224, 224, 3), 1000, rngs=nnx.Rngs(0))
  schedule = optim.make_schedule(config.schedule, 100, config.num_epochs)
  trainable = optim.trainable_params(model, config.trainable)
  optimizer = nnx.Optimizer(model, optim.make_optimizer(config.optimizer, schedule), wrt=trainable)
  graphdef, state = nnx.split({"model": model, "optimizer": optimizer})
  images = jnp.asarray(np.random.default_rng(0).normal(size=(batch, 224, 224, 3)), jnp.float32)
  labels = jnp.zeros((batch,), jnp.int32)
  train_step = step_lib.TrainStep(graphdef, lambda arrays, batch_indices: arrays, "", 0)
  step = lambda state: train_step(state, (images, labels), 0)  # noqa: E731
  state, _ = step(state)  # compile
  jax.block_until_ready(state)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    state, metrics = step(state)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  return batch / float(np.median(times))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8, help="train-step batch")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--input_batches", type=int, default=8)
  parser.add_argument("--out", default="benchmarks/results")
  args = parser.parse_args()
  machine = describe_machine()
  result = {
    "machine": machine,
    "input_images_per_s": input_images_per_second(256, 128, args.input_batches),
    "step_batch": args.batch,
    "step_images_per_s": {
      arch: step_images_per_second(arch, args.batch, args.repeats)
      for arch in ("tt4_fc_fc", "fc_fc_fc")
    },
  }
  record_end_load(machine)
  backend = jax.default_backend()
  with open(os.path.join(args.out, f"imagenet_input_{backend}.json"), "w") as f:
    json.dump(result, f, indent=1)
  steps = result["step_images_per_s"]
  lines = [
    "# ImageNet input and VGG-16 train step (`python -m benchmarks.imagenet_input`)",
    "",
    f"Machine: {machine_line(machine)}.",
    "",
    "| what | images/s |",
    "|---|---:|",
    f"| streamed input: decode + resize 256 + crop 224 + flip, batch 128 | "
    f"{result['input_images_per_s']:,.0f} |",
    f"| train step, tt_vgg16 tt4_fc_fc (frozen convs), batch {args.batch} | "
    f"{steps['tt4_fc_fc']:,.1f} |",
    f"| train step, tt_vgg16 fc_fc_fc (frozen convs), batch {args.batch} | "
    f"{steps['fc_fc_fc']:,.1f} |",
    "",
  ]
  with open(os.path.join(args.out, f"imagenet_input_{backend}.md"), "w") as f:
    f.write("\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  main()
