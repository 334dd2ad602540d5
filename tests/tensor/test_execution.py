"""The execution planner: deterministic choices from the cost model, overrides, autotuning."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tnjax import models
from tnjax.nn import format_table, layer_rows
from tnjax.tensor import cp, execution


@pytest.fixture
def autotune_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("TNJAX_AUTOTUNE_CACHE", str(tmp_path))
  execution.set_autotune(True)
  yield tmp_path
  execution.set_autotune(None)


def cpu_choice(paths):
  return execution.choose("test", paths, platform="cpu")


def test_cp_conv_choices_follow_the_cpu_measurements():
  # CPAC (Wang et al. 2021) shapes at batch 64, fwd+bwd measured on 2 CPU cores
  # (factored / rebuilt kernel): 8->8 on 13x13 R=4 1.8 / 2.1 ms, R=12 3.0 / 2.4 ms;
  # 1->8 on 28x28 R=12 12.5 / 6.4 ms. At 256->256 (R=64, 32x32, batch 32) the
  # factored chain takes 236 ms against the dense conv's 7 s.
  assert (
    cpu_choice(execution.cp_kernel_paths(64, (13, 13), (11, 11), (3, 3, 8, 8), 4, 4)) == "factored"
  )
  assert (
    cpu_choice(execution.cp_kernel_paths(64, (13, 13), (11, 11), (3, 3, 8, 8), 12, 4)) == "dense"
  )
  assert (
    cpu_choice(execution.cp_kernel_paths(64, (28, 28), (26, 26), (3, 3, 1, 8), 12, 4)) == "dense"
  )
  vgg = (3, 3, 256, 256)
  assert cpu_choice(execution.cp_kernel_paths(32, (32, 32), (32, 32), vgg, 64, 4)) == "factored"
  assert cpu_choice(execution.tucker2_paths(32, (32, 32), (32, 32), vgg, 38, 38, 4)) == "factored"
  assert cpu_choice(execution.conv_sketch_paths(32, (32, 32), (32, 32), vgg, 7, 4)) == "factored"


def test_matrix_formats_rebuild_only_when_the_factors_cost_more_than_the_weight():
  assert cpu_choice(execution.two_factor_paths(500, 1024, 8, 1024, 4)) == "factored"
  assert cpu_choice(execution.two_factor_paths(4096, 64, 60, 64, 4)) == "dense"
  assert cpu_choice(execution.cp_matrix_paths(100, (4, 8, 8, 4), (4, 8, 8, 4), 8, 4)) == "factored"
  assert cpu_choice(execution.cp_matrix_paths(1000, (4, 8, 8, 4), (4, 8, 8, 4), 64, 4)) == "dense"


def test_btt_counts_its_transposes_and_rebuilds_w_for_a_few_small_blocks():
  from tnjax.tensor import btt  # pylint: disable=g-import-not-at-top

  # Measured on one core, fwd+bwd: the own-model ViT's 64 -> 1536 -> 64 BTT MLP at rank 1
  # (8x8 -> 32x48, 6,272 tokens) 790 ms factored against 266 ms with W rebuilt; the
  # 4096x4096 layer (8x512 -> 512x8, rank 32, 8,192 tokens) 4.45x faster than dense factored.
  assert cpu_choice(btt.btt_paths(6272, (8, 8), (32, 48), 1, 4)) == "dense"
  assert cpu_choice(btt.btt_paths(6272, (48, 32), (8, 8), 1, 4)) == "dense"
  assert cpu_choice(btt.btt_paths(8192, (8, 512), (512, 8), 32, 4)) == "factored"


def test_the_choice_is_deterministic_and_method_overrides_it():
  paths = execution.cp_kernel_paths(64, (28, 28), (26, 26), (3, 3, 1, 8), 12, 4)
  assert {execution.choose("cp", paths, platform="cpu") for _ in range(5)} == {"dense"}
  assert execution.choose("cp", paths, method="factored") == "factored"
  with pytest.raises(ValueError, match=r"method='svd' is not a path of this layer"):
    execution.choose("cp", paths, method="svd")
  # Equal costs: the first listed path wins.
  tie = [execution.Path("factored", 1e6, 1e6), execution.Path("dense", 1e6, 1e6)]
  assert execution.choose("x", tie) == "factored"


def test_training_costs_three_passes_and_launches_twice():
  path = execution.Path("p", flops=7e9, bytes=1.6e9, ops=10)
  cpu = execution.device_profile("cpu")
  forward = 7e9 / cpu.flops_per_s + 1.6e9 / cpu.bytes_per_s + 10 * cpu.seconds_per_op
  assert execution.seconds(path, cpu, training=False) == pytest.approx(forward)
  assert execution.seconds(path, cpu, training=True) == pytest.approx(
    3 * (forward - 10 * cpu.seconds_per_op) + 20 * cpu.seconds_per_op
  )


def test_adtn_blocks_balance_flops_and_bytes_per_device():
  assert execution.adtn_block_qubits(20, "cpu") == 4  # 16x16 blocks: measured fastest on 2 cores
  assert execution.adtn_block_qubits(20, "gpu") > 4
  assert execution.adtn_block_qubits(3, "gpu") == 3  # never wider than the state


def test_conv_output_sizes_match_lax():
  x = jnp.zeros((1, 13, 11, 2))
  for strides, padding, dilation in [
    ((1, 1), ((0, 0), (0, 0)), (1, 1)),
    ((2, 3), ((1, 2), (0, 1)), (1, 2)),
  ]:
    kernel = jnp.zeros((3, 2, 2, 1))
    expected = jax.lax.conv_general_dilated(
      x, kernel, strides, padding, rhs_dilation=dilation, dimension_numbers=("NHWC", "HWIO", "NHWC")
    ).shape[1:3]
    assert execution.conv_out_hw((13, 11), (3, 2), strides, padding, dilation) == expected


def test_autotuning_measures_once_and_caches_the_winner_per_device(autotune_cache):
  calls = []

  def apply(name, x):
    calls.append(name)
    return x * 2.0 if name == "factored" else jnp.sort(x) * 2.0

  paths = [
    execution.Path("factored", 1e12, 0),
    execution.Path("dense", 1, 0),
  ]  # the model says dense
  x = jnp.ones((256,))
  choice = execution.choose("toy", paths, apply=apply, operands=(x,))
  assert sorted(set(calls)) == ["dense", "factored"]
  files = list(autotune_cache.iterdir())
  assert len(files) == 1 and files[0].name.startswith("cpu-")
  cached = json.loads(files[0].read_text())
  assert list(cached.values()) == [choice]
  calls.clear()
  assert execution.choose("toy", paths, apply=apply, operands=(x,)) == choice
  assert calls == []  # read from the cache, nothing timed again


def test_autotuning_is_off_by_default_and_in_tests(tmp_path, monkeypatch):
  monkeypatch.delenv("TNJAX_AUTOTUNE", raising=False)
  assert not execution.autotune_enabled()
  monkeypatch.setenv("TNJAX_AUTOTUNE", "1")
  assert execution.autotune_enabled()


def test_layers_report_their_path_in_the_table():
  model = models.build_model(
    {"name": "cpac_cnn", "conv_layer": {"kind": "cp", "rank": 12}},
    (28, 28, 1),
    10,
    rngs=nnx.Rngs(0),
  )
  example = jax.ShapeDtypeStruct((64, 28, 28, 1), jnp.float32)
  rows = {r["name"]: r["path"] for r in layer_rows(model, example)}
  assert rows == {"conv1": "dense", "conv2": "dense", "hidden": "-", "output": "-"}  # R = 12
  assert "path" in format_table(model, example).splitlines()[0]
  assert "path" not in format_table(model).splitlines()[0]
  forced = models.build_model(
    {"name": "cpac_cnn", "conv_layer": {"kind": "cp", "rank": 12, "method": "factored"}},
    (28, 28, 1),
    10,
    rngs=nnx.Rngs(0),
  )
  assert layer_rows(forced, example)[0]["path"] == "factored"


def test_cp_conv_paths_agree_in_float64(x64):
  rng = np.random.default_rng(0)
  k = cp.CPKernel(*(jnp.asarray(rng.normal(size=(n, 5))) for n in (6, 3, 2, 4)))
  x = jnp.asarray(rng.normal(size=(2, 9, 8, 4)))
  args = dict(strides=(2, 1), padding=((1, 1), (0, 1)), dilation=(1, 2))
  factored = cp.cp_kernel_conv(x, k, method="factored", **args)
  dense = cp.cp_kernel_conv(x, k, method="dense", **args)
  np.testing.assert_allclose(factored, dense, rtol=1e-12, atol=1e-12)
