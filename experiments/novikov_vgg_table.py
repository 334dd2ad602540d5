r"""Novikov et al. (2015) VGG table: compression of each FC variant, with accuracies from runs.

  python experiments/novikov_vgg_table.py --out experiments/results/novikov_vgg16_table \
      [--workdir runs/vgg16_sweep]

Compression columns are computed exactly from configs/tt_vgg16.py's variants
(models built abstractly, no memory): the FC6 layer, the compressed layers
together, and the whole network. Accuracy columns come from finished runs in
the workdirs (matched by their FC6/FC7 specs), else 'missing'.
"""

from __future__ import annotations

import argparse

import report_lib
from flax import nnx


from tnjax.configs import tt_vgg16, vgg_common
from tnjax import errors, models
from tnjax.nn import layer_rows, total_params

DENSE_VGG16 = 138_357_544


def compression_columns(arch: str):
  config = tt_vgg16.get_config(f"arch={arch}")
  model = nnx.eval_shape(
    lambda: models.build_model(config.model, (224, 224, 3), 1000, rngs=nnx.Rngs(0))
  )
  rows = {r["name"]: r for r in layer_rows(model)}
  compressed = [r for r in rows.values() if r["kind"] != "dense"]
  weights = sum(r["weights"] for r in compressed)
  replaced = sum(r["dense_params"] - (r["params"] - r["weights"]) for r in compressed)
  return (
    rows["fc6"]["compression"],
    replaced / weights if weights else 1.0,
    DENSE_VGG16 / total_params(model),
  )


def run_accuracies(workdirs):
  found, runs = {}, report_lib.load_runs(workdirs)
  for run in runs:
    layers = run["config"]["model"].get("layers") or {}
    for arch in vgg_common.ARCHS:
      if vgg_common.fc_layers(arch) == layers and run["result"]:
        result = run["result"]
        found[arch] = (result["test_accuracy"], result.get("test_top5_accuracy"))
  if not found:  # the columns would all say "missing" without a word about why
    raise errors.UserError(
      f"none of the {sum(bool(r['result']) for r in runs)} finished runs given has one of the "
      f"table's FC layouts ({', '.join(vgg_common.ARCHS)}); pass the VGG sweep's workdir, "
      "or no --workdir."
    )
  return found


def _errors(top1: float, top5: float | None) -> str:
  top5_text = "-" if top5 is None else f"{100 * (1 - top5):.1f}"
  return f"{100 * (1 - top1):.1f} / {top5_text}"


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", action="append", default=[])
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  accuracies = run_accuracies(args.workdir) if args.workdir else {}
  header = [
    "architecture",
    "FC6 compression",
    "compressed layers",
    "network compression",
    "our top-1 / top-5 error",
    "paper top-1 / top-5 error",
  ]
  table = []
  for arch in vgg_common.ARCHS:
    fc6, layers, network = compression_columns(arch)
    paper = vgg_common.PAPER_VGG16_ERRORS.get(arch)
    ours = accuracies.get(arch)
    # Floored, as the paper prints them (37,732.8 -> 37,732).
    table.append(
      [
        arch.replace("_", " ").upper(),
        f"{int(fc6):,}",
        f"{int(layers):,}",
        f"{network:.2f}x",
        "missing" if ours is None else _errors(*ours),
        f"{paper[0]} / {paper[1]}" if paper else "-",
      ]
    )
  notes = [
    "VGG-16 on ImageNet (Novikov et al. 2015; PAPERS.md section 1). Compression columns "
    "are exact counts (biases kept dense): the paper's 50,972 (TT4), 194,622 (TT2), "
    "713,614 (TT1), 37,732 (TT4 TT4 over FC6+FC7), 3,521 / 704 / 70 (MR1 / MR5 / MR50), "
    "and 3.9x / 7.4x for the whole network. No ImageNet runs here: accuracy is 'missing' "
    "until runs are given with --workdir."
  ]
  for path in report_lib.write_outputs(
    args.out, "Novikov et al. VGG-16 table", notes, header, table
  ):
    print(path)


if __name__ == "__main__":
  report_lib.run_main(main)
