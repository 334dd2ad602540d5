"""The headline command's path: ImageNet missing, frozen layers without weights, and a
Keras VGG-16 weights file that loads every conv layer and trains the TT head."""

import h5py
import numpy as np
import pytest
from flax import nnx

from tnjax import config_lib, errors
from tnjax.data import stream
from tnjax.models import vgg
from tnjax.training import trainer, validate


def _vgg16_config(arg="synthetic", **overrides):
  return config_lib.load_config(f"configs/tt_vgg16.py:{arg}", overrides)


def _keras_notop_file(path, seed=0):
  """A Keras applications VGG-16 'notop' file (Keras 1 legacy layout), random weights."""
  rng = np.random.default_rng(seed)
  arrays, channels = {}, 3
  with h5py.File(path, "w") as f:
    names = []
    for block, (size, width) in enumerate(zip(vgg.BLOCKS[16], vgg.WIDTHS), start=1):
      for conv in range(1, size + 1):
        keras_name = f"block{block}_conv{conv}"
        names.append(keras_name)
        group = f.create_group(keras_name)
        group.attrs["weight_names"] = [
          f"{keras_name}_W_1:0".encode(),
          f"{keras_name}_b_1:0".encode(),
        ]
        std = (2.0 / (9 * channels)) ** 0.5  # He: activations keep their scale through 13 convs
        kernel = rng.normal(0, std, (3, 3, channels, width)).astype(np.float32)
        bias = rng.normal(0, 0.01, width).astype(np.float32)
        group.create_dataset(f"{keras_name}_W_1:0", data=kernel)
        group.create_dataset(f"{keras_name}_b_1:0", data=bias)
        arrays[f"conv{block}_{conv}"] = kernel
        channels = width
    f.attrs["layer_names"] = [n.encode() for n in names]
  return arrays


def test_imagenet_not_prepared_is_one_line_naming_the_tars_and_the_prepare_command(tmp_path):
  config = _vgg16_config("arch=tt4_fc_fc", **{"data.data_dir": str(tmp_path)})
  with pytest.raises(errors.UserError) as caught:
    validate.validate_config(config)
  message = str(caught.value)
  assert f"{tmp_path}/downloads/manual/" in message
  assert "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar" in message
  assert "python -m tnjax.data.prepare" in message and "synthetic" in message
  assert "\n" not in message


def test_frozen_convs_without_weights_are_refused_naming_them():
  with pytest.raises(errors.UserError, match=r"freezes 13 layer\(s\) that no pretrained file sets"):
    validate.validate_config(_vgg16_config())
  with pytest.raises(errors.UserError, match=r"\(conv1_1, conv1_2, conv2_1 \.\.\. conv5_3\)"):
    validate.validate_config(_vgg16_config())
  validate.validate_config(_vgg16_config(**{"pretrained.allow_random_frozen": True}))
  validate.validate_config(_vgg16_config("synthetic,train_all"))  # nothing frozen
  validate.validate_config(_vgg16_config("runlocal"))  # the smoke run opts in


def test_a_file_that_covers_only_part_of_the_frozen_layers_names_the_rest(tmp_path):
  np.savez(tmp_path / "part.npz", **{"conv1_1/kernel": np.zeros((3, 3, 3, 64), np.float32)})
  config = _vgg16_config(**{"pretrained.path": str(tmp_path / "part.npz")})
  with pytest.raises(errors.UserError, match=r"part.npz does not set \(conv1_1, conv1_2, .*"):
    validate.validate_config(config)


def test_keras_weights_on_imagenet_inputs_must_say_caffe(tmp_path, monkeypatch):
  _keras_notop_file(tmp_path / "vgg16_notop.h5")
  config = _vgg16_config("arch=tt4_fc_fc", **{"pretrained.path": str(tmp_path / "vgg16_notop.h5")})
  monkeypatch.setattr(stream, "check_prepared", lambda data: None)  # as if ImageNet were there
  with pytest.raises(errors.UserError, match=r"expects 'caffe' inputs .* normalization=caffe"):
    validate.validate_config(config)
  caffe = _vgg16_config(
    "arch=tt4_fc_fc,normalization=caffe", **{"pretrained.path": str(tmp_path / "vgg16_notop.h5")}
  )
  validate.validate_config(caffe)


@pytest.mark.slow
def test_a_keras_vgg16_file_loads_every_conv_and_the_tt_head_trains(tmp_path):
  kernels = _keras_notop_file(tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
  config = _vgg16_config(
    **{
      "pretrained.path": str(tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
      "data.synthetic.image_shape": (32, 32, 3),  # conv weights fit any input size
      "model.layers.fc6": {"kind": "tt", "ranks": 4},  # automatic modes for 512 inputs
      "num_epochs": 1,
      "batch_size": 8,
      "eval_batch_size": 16,
      "data.synthetic.num_train": 32,
      "data.synthetic.num_test": 16,
      "progress_bar": False,
    }
  )
  result, state = trainer.train(config, str(tmp_path / "run"))
  assert result["step"] == 4
  params = nnx.to_pure_dict(nnx.state(state["model"], nnx.Param))
  for name, kernel in kernels.items():  # loaded, and frozen: bitwise the file's
    np.testing.assert_array_equal(params[name]["kernel"], kernel, err_msg=name)
  assert len(params["fc6"]["cores"]) == 4
