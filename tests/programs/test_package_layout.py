"""The package's shape: a short top floor, one config loader, a public face, one-line errors."""

import pathlib
import subprocess
import sys

import ml_collections
import pytest

from tnjax import config_lib, errors

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_top_level_holds_the_programs_and_their_helpers_only():
  modules = sorted(p.name for p in (REPO / "tnjax").glob("*.py") if p.name != "__init__.py")
  assert len(modules) <= 12, modules
  assert not {"trainer.py", "checkpoint.py", "run_lock.py"} & set(modules)


def test_one_config_loader_in_the_tree():
  loaders = [
    p.relative_to(REPO).as_posix()
    for p in (REPO / "tnjax").rglob("*.py")
    if "spec_from_file_location" in p.read_text()
  ]
  assert loaders == ["tnjax/config_lib.py"]


def test_config_files_written_against_config_lib_still_reach_the_moved_helpers():
  from tnjax import config_args  # pylint: disable=g-import-not-at-top
  from tnjax.training import schema  # pylint: disable=g-import-not-at-top

  assert config_lib.base_config().to_dict() == schema.base_config().to_dict()
  assert config_lib.parse_arg is config_args.parse_arg
  assert config_lib.is_harmless is schema.is_harmless and config_lib.is_harmless("mesh.data")
  with pytest.raises(AttributeError, match="has no attribute 'base_configs'"):
    config_lib.base_configs  # noqa: B018


def test_import_tnjax_as_tn_gives_the_subpackages_and_entry_points():
  code = (
    "import tnjax as tn; tn.nn.TTDense; tn.tensor.tt_from_dense; tn.models.build_model; "
    "from tnjax import train; train.main; "  # the program module, not shadowed
    "print(tn.training.train.__module__, tn.load_config.__module__, tn.train is train, "
    "callable(tn.train))"
  )
  run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
  assert run.returncode == 0, run.stderr[-2000:]
  assert run.stdout.split() == ["tnjax.training.trainer", "tnjax.config_lib", "True", "True"]


def test_tn_train_leaves_a_scripts_own_flags_alone():
  # flax's examples define --config and --workdir themselves; tn.train must not define them.
  code = (
    "from absl import flags; from ml_collections import config_flags; "
    "config_flags.DEFINE_config_file('config'); flags.DEFINE_string('workdir', None, ''); "
    "import tnjax as tn; tn.train; print(sorted(n for n in flags.FLAGS if n in "
    "('config', 'workdir', 'allow_config_change', 'compile_cache')))"
  )
  run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
  assert run.returncode == 0, run.stderr[-2000:]
  assert run.stdout.split() == ["['config',", "'workdir']"]


def _config_file(tmp_path, text):
  path = tmp_path / "my_config.py"
  path.write_text(text)
  return str(path)


def test_config_files_that_cannot_load_are_one_line_user_errors(tmp_path):
  with pytest.raises(
    errors.UserError, match="config 'nope.py' is neither a .py file nor a packaged config"
  ):
    config_lib.load_config("nope.py")
  broken = _config_file(tmp_path, "def get_config(:\n  pass\n")
  with pytest.raises(errors.UserError, match=r"my_config.py line 1: .*fix the file"):
    config_lib.load_config(broken)
  empty = _config_file(tmp_path, "x = 1\n")
  with pytest.raises(errors.UserError, match=r"my_config.py defines no get_config\(\)"):
    config_lib.load_config(empty)
  with pytest.raises(errors.UserError, match="config argument 'nonsense' is unknown"):
    config_lib.load_config(str(REPO / "configs/tt_mnist.py") + ":nonsense")


def test_overrides_are_typed_by_their_field_and_the_loaded_config_is_locked(tmp_path):
  path = str(REPO / "configs/tt_mnist.py") + ":synthetic"
  rest, overrides = config_lib.split_overrides(
    ["prog", "--config.num_epochs=3", "--noconfig.progress_bar", "--workdir=w"]
  )
  assert rest == ["prog", "--workdir=w"]
  config = config_lib.load_config(path, overrides)
  assert (config.num_epochs, config.progress_bar) == (3, False)
  with pytest.raises(AttributeError):
    config.new_field = 1  # locked: a typo in the trainer's reads cannot add a field
  with pytest.raises(errors.UserError, match="--config.num_epochs needs a value"):
    config_lib.apply_overrides(config, {"num_epochs": True})
  spec = config_lib.apply_overrides(config, {"model.layers.hidden": "{'kind': 'lowrank'}"})
  assert isinstance(spec.model.layers.hidden, ml_collections.ConfigDict)


def test_space_separated_overrides_are_read_as_ml_collections_flags_read_them():
  rest, overrides = config_lib.split_overrides(
    [
      "prog",
      "--config.batch_size",
      "32",
      "--config.schedule.learning_rate",
      "-0.5",
      "--config.progress_bar",
      "--workdir",
      "w",
    ]
  )
  assert rest == ["prog", "--workdir", "w"]
  assert overrides == {"batch_size": "32", "schedule.learning_rate": "-0.5", "progress_bar": True}


def test_only_tnjax_errors_become_one_line_messages(capsys):
  def user_mistake():
    raise errors.UserError("config.x=1 is wrong; set it to 2")

  assert errors.run_cli(user_mistake) == errors.EXIT_USER_ERROR
  assert capsys.readouterr().err.strip().startswith("tnjax: error: config.x=1 is wrong")

  def library_bug():
    raise ValueError("an internal shape mismatch")

  with pytest.raises(ValueError, match="internal shape mismatch"):  # keeps its traceback
    errors.run_cli(library_bug)
  with pytest.raises(errors.UserError, match="bad spec"):
    with errors.input_errors_are_user_errors():
      raise ValueError("bad spec")


def test_layers_take_their_family_constructor_and_refuse_another_formats_spec():
  from flax import nnx

  from tnjax import nn

  layer = nn.TTDense(64, 32, rngs=nnx.Rngs(0))  # the spec defaults to TTSpec()
  assert isinstance(layer.spec, nn.TTSpec)
  with pytest.raises(ValueError, match="TTDense takes a TTSpec, got CPSpec"):
    nn.TTDense(64, 32, nn.CPSpec(rank=2), rngs=nnx.Rngs(0))


def test_overrides_given_as_text_instead_of_a_dict_are_one_line():
  with pytest.raises(errors.UserError, match=r"overrides are a dict .* got str 'num_epochs=3'"):
    config_lib.load_config("tt_mnist", "num_epochs=3")


def test_a_cloud_storage_failure_is_one_line(capsys):
  from tnjax import errors

  def unreachable():
    try:
      raise ConnectionError("Cannot connect to host storage.googleapis.com:443")
    except ConnectionError as e:
      raise RuntimeError("while acquiring the run lock") from e

  assert errors.run_cli(unreachable) == errors.EXIT_USER_ERROR
  assert (
    capsys.readouterr()
    .err.strip()
    .startswith(
      "tnjax: error: cannot reach cloud storage (RuntimeError: while acquiring the run lock)"
    )
  )


def test_packaged_configs_are_attributes_and_prepare_names_a_missing_manual_download(tmp_path):
  import tnjax
  from tnjax import errors
  from tnjax.data import prepare

  assert tnjax.configs.tt_mnist.get_config("synthetic").model.name == "fc2"
  with pytest.raises(AttributeError, match="has no attribute 'no_such_config'"):
    tnjax.configs.no_such_config  # noqa: B018
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(errors.UserError, match=r"imagenet2012 is downloaded by hand: .*manual"):
    prepare.prepare(["imagenet2012"], str(tmp_path / "data"))
  assert not (tmp_path / "data").exists()
