r"""Prepares the TFDS datasets that configs read, into a data_dir (local or gs://).

  python -m tnjax.data.prepare --data_dir gs://bucket/tensorflow_datasets configs/tt_cifar10.py

Run it once on a machine with network and disk (launch/prepare_data.sh does);
the trainers then read the prepared copy through TFDS_DATA_DIR or data.data_dir.
ImageNet needs its manual download in <data_dir>/downloads/manual first (TFDS says so).
"""

from __future__ import annotations

import argparse
import sys

from tnjax import config_lib
from tnjax import errors, extras, fileio
from tnjax.data import memory


def datasets_needed(config_paths) -> list[str]:
  """The TFDS names the configs read (no duplicates, in order); others need nothing."""
  names = []
  for path in config_paths:
    config = config_lib.load_config(path)
    if config.data.source in memory.TFDS_SOURCES and config.data.name not in names:
      names.append(config.data.name)
  return names


def prepare(names, data_dir: str) -> None:
  tfds = extras.require("tensorflow_datasets", "preparing TFDS data")

  manual = fileio.workdir_path(data_dir) / "downloads" / "manual"
  for name in names:
    builder = tfds.builder(name, data_dir=data_dir)
    if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None) and not (
      manual.is_dir() and any(manual.iterdir())
    ):
      raise errors.UserError(
        f"{name} is downloaded by hand: put its files (for imagenet2012, "
        f"ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar) in {manual}, then rerun."
      )
    print(f"Preparing {name} in {builder.data_dir} ...", flush=True)
    builder.download_and_prepare()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("configs", nargs="+", help="config files[:args]")
  parser.add_argument("--data_dir", required=True, help="tensorflow_datasets directory")
  parser.add_argument("--dry_run", action="store_true", help="list the datasets only")
  args = parser.parse_args(argv)

  def run():
    names = datasets_needed(args.configs)
    print("TFDS datasets needed: " + (", ".join(names) or "none (IDX or synthetic data)"))
    if not args.dry_run:
      prepare(names, args.data_dir)

  return errors.run_cli(run)


if __name__ == "__main__":
  sys.exit(main())
