"""A run's deterministic eval pipeline, recorded when the run starts and replayed in JAX.

The model of a run never sees the data set's own examples: preprocess.py scales, pads,
whitens and centres them, stream.py resizes, crops and normalises them. Serving the
model (tnjax.export, tnjax.load_predict) must do the same, or its accuracy silently
drops. So the trainer writes the pipeline into the workdir:

- `input_pipeline.json`: the input contract (shape, dtype, value range of one example as
  the data set stores it) and the ordered steps, e.g.
  [{"op": "scale", "how": "unit"}, {"op": "pad", "to": 32}, {"op": "subtract_mean"}];
- `preprocessing.npz`: the arrays the steps fitted on the train split (the mean image,
  the per-channel statistics, the ZCA matrix).

`apply(images, record, arrays)` runs the steps in jax.numpy, so they trace into an
exported program; for in-memory data it gives what memory.load_dataset gives.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tnjax.data import memory, preprocess

VERSION = 1


def input_contract(data_config) -> dict:
  """What one example looks like before any preprocessing: shape, dtype, value range."""
  if data_config.source == memory.STREAM_SOURCE:  # variable-size JPEGs: the eval crop is the input
    size = data_config.image_size
    return {
      "shape": [size, size, 3],
      "dtype": "float32",
      "range": [0, 255],
      "note": (
        f"RGB, shorter side resized to {data_config.resize_to} (bilinear), centre crop "
        f"{size}x{size}"
      ),
    }
  (height, width, channels), _ = memory.stored_shape(data_config)
  return {"shape": [height, width, channels], "dtype": "uint8", "range": [0, 255], "note": ""}


def steps(data_config) -> list[dict]:
  """The ordered deterministic steps of config.data's eval pipeline."""
  if data_config.source == memory.STREAM_SOURCE:
    order, mean, std = stream_normalization(data_config)
    return [{"op": "normalize", "order": order, "mean": list(mean), "std": list(std)}]
  out = [{"op": "scale", "how": data_config.scale}]
  if data_config.pad_to:
    out.append({"op": "pad", "to": int(data_config.pad_to)})
  if data_config.get("whiten", "") == "gcn_zca":
    out += [{"op": "gcn"}, {"op": "zca"}]
  if data_config.subtract_mean:
    out.append({"op": "subtract_mean"})
  return out


def stream_normalization(data_config):
  from tnjax.data import stream  # pylint: disable=g-import-not-at-top  # (no TF at import)

  return stream.NORMALIZATIONS[data_config.get("normalization", "imagenet")]


def record(data_config) -> dict:
  """input_pipeline.json's content for config.data."""
  return {"version": VERSION, "input": input_contract(data_config), "steps": steps(data_config)}


def needed_arrays(pipeline: dict) -> set[str]:
  """Names of the fitted arrays the steps read (all in preprocessing.npz)."""
  names = set()
  for step in pipeline["steps"]:
    if step["op"] == "scale" and step["how"] == "standardize":
      names |= {"scale_mean", "scale_std"}
    elif step["op"] == "zca":
      names |= {"zca_mean", "zca_matrix"}
    elif step["op"] == "subtract_mean":
      names.add("mean_image")
  return names


def describe(pipeline: dict) -> str:
  """One line: the input contract and the steps, as tnjax.export prints it."""
  contract = pipeline["input"]
  shape = "x".join(map(str, contract["shape"]))
  ops = " -> ".join(_step_name(s) for s in pipeline["steps"]) or "none"
  note = f" ({contract['note']})" if contract.get("note") else ""
  low, high = contract["range"]
  return (
    f"input (batch, {shape.replace('x', ', ')}) {contract['dtype']} in [{low}, {high}]{note}; "
    f"inside: {ops}"
  )


def _step_name(step: dict) -> str:
  if step["op"] == "scale":
    return {"unit": "x/255", "symmetric": "2x/255-1", "standardize": "standardize"}[step["how"]]
  if step["op"] == "pad":
    return f"pad to {step['to']}x{step['to']}"
  if step["op"] == "normalize":
    return f"{step['order'].upper()} (x - mean) / std"
  return {"gcn": "GCN", "zca": "ZCA", "subtract_mean": "minus the train mean image"}[step["op"]]


def _scale(x, step, arrays):  # a lookup of each byte, as preprocess.py scales
  fitted = {k: np.asarray(v) for k, v in arrays.items() if k.startswith("scale_")}
  table = jnp.asarray(preprocess.scale_table(step["how"], fitted, x.shape[-1]))
  return table[x.astype(jnp.int32), jnp.arange(x.shape[-1])]


def _pad(x, step, arrays):
  del arrays
  size, (height, width) = step["to"], x.shape[1:3]
  top, left = (size - height) // 2, (size - width) // 2
  return jnp.pad(x, ((0, 0), (top, size - height - top), (left, size - width - left), (0, 0)))


def _gcn(x, step, arrays):
  del step, arrays
  flat = x.reshape(x.shape[0], -1)
  flat = flat - flat.mean(axis=1, keepdims=True)
  flat = 55.0 * flat / jnp.maximum(jnp.linalg.norm(flat, axis=1, keepdims=True), 1e-8)
  return flat.reshape(x.shape)


def _zca(x, step, arrays):
  del step
  return ((x.reshape(x.shape[0], -1) - arrays["zca_mean"]) @ arrays["zca_matrix"]).reshape(x.shape)


def _subtract_mean(x, step, arrays):
  del step
  return x - arrays["mean_image"]


def _normalize(x, step, arrays):
  del arrays
  if step["order"] == "bgr":
    x = x[..., ::-1]
  return (x - jnp.asarray(step["mean"], jnp.float32)) / jnp.asarray(step["std"], jnp.float32)


STEPS = {
  "scale": _scale,
  "pad": _pad,
  "gcn": _gcn,
  "zca": _zca,
  "subtract_mean": _subtract_mean,
  "normalize": _normalize,
}


def apply(images, pipeline: dict, arrays: dict):
  """The eval pipeline on raw examples (the contract's shape and dtype), in jax.numpy."""
  x = jnp.asarray(images)
  for step in pipeline["steps"]:
    if step["op"] not in STEPS:
      raise ValueError(f"input pipeline step {step['op']!r} is unknown to this tnjax; upgrade it.")
    if step["op"] != "scale":
      x = x.astype(jnp.float32)
    x = STEPS[step["op"]](x, step, arrays)
  return x.astype(jnp.float32)
