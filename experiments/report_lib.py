"""Reading finished runs of sweep workdirs and writing tables (markdown, CSV) and figures.

A run is a directory with config.json and result.json (written by the trainer);
a sweep workdir holds one run per sub-directory (tnjax.sweep). Report scripts pass
any mix of sweep workdirs and single run directories.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import statistics
import sys

from tnjax.training import schema as config_schema
from tnjax import errors, extras, fileio
from tnjax.training import resume_check, run_files


def pyplot():
  """matplotlib.pyplot drawing to files (Agg), or one line naming the extra that adds it."""
  extras.require("matplotlib", "the report's figures").use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


def run_main(main) -> None:
  """Runs a report script's main: a mistake (a wrong directory, a missing extra) is one
  stderr line and exit 2, as tnjax's own programs end (a report only reads its input)."""

  def guarded():
    try:
      with errors.input_errors_are_user_errors():
        main()
    except KeyError as e:  # a config field this report reads is not in the runs given
      raise errors.UserError(
        f"the runs given lack config field {e}: they are not this report's study; pass the "
        "workdir of the sweep it reports."
      ) from e

  sys.exit(errors.run_cli(guarded))


def _is_run(path) -> bool:
  return (fileio.Path(path) / run_files.CONFIG).exists()


def load_runs(workdirs) -> list[dict]:
  """Every run under `workdirs` (local or gs://): {'dir', 'config', 'result' (None if
  unfinished), 'epoch_seconds' (median), 'train_seconds' (summed)}."""
  runs = []
  for workdir in workdirs:
    workdir = fileio.workdir_path(workdir)
    if not workdir.is_dir():
      raise FileNotFoundError(f"{workdir} is not a directory of runs.")
    paths = (
      [workdir]
      if _is_run(workdir)
      else sorted((d for d in workdir.iterdir() if _is_run(d)), key=str)
    )
    if not paths:  # an empty table would overwrite a real one without a word
      raise errors.UserError(
        f"{workdir} holds no runs (directories with {run_files.CONFIG}); pass a sweep's "
        "workdir or a run's directory."
      )
    for path in paths:
      runs.append(load_run(path))
  if all(run["result"] is None for run in runs):
    raise errors.UserError(
      f"none of the {len(runs)} runs under {', '.join(map(str, workdirs))} has finished "
      f"({run_files.RESULT}); `python -m tnjax.sweep ... --status` says where they stand."
    )
  return runs


def load_run(path) -> dict:
  path = fileio.workdir_path(path)
  config = fileio.read_json(path / run_files.CONFIG)
  result = fileio.read_json(path / run_files.RESULT)
  seconds = [
    r["epoch_seconds"] for r in fileio.read_jsonl(path / run_files.METRICS) if "epoch_seconds" in r
  ]
  point = fileio.read_json(path / run_files.POINT) or {}
  return {
    "dir": str(path),
    "config_file": point.get("config"),
    "config": config,
    "result": result,
    "epoch_seconds": statistics.median(seconds) if seconds else None,
    # Epochs cut by a stop and resumed record no time: a lower bound.
    "train_seconds": sum(seconds),
  }


def _without_seed(config: dict) -> str:
  """The run's config as a key, without its seed and the fields that cannot change what it
  trains (where the data live, W&B group, ...), with fields added since read at their
  default: runs a sweep resumed across tnjax versions still group by seed."""
  fields = resume_check.comparable_fields(config)
  # How many test images were scored changes the result, though not the training.
  measured = ("data.max_test_examples",)
  kept = {
    k: v
    for k, v in fields.items()
    if k != "seed" and (k in measured or not config_schema.is_harmless(k))
  }
  return json.dumps(kept, sort_keys=True, default=str)


def seed_groups(runs) -> list[list[dict]]:
  """Runs that differ only in config.seed, grouped, in the order their first run appears."""
  groups: dict[str, list[dict]] = {}
  for run in runs:
    group = groups.setdefault(_without_seed(run["config"]), [])
    twin = next((r for r in group if r["config"].get("seed") == run["config"].get("seed")), None)
    if twin is None:
      group.append(run)
    else:  # the same run trained twice (a sweep rerun with --seeds): one seed, not two
      if twin["result"] is None and run["result"] is not None:  # keep the finished copy
        group[group.index(twin)], twin, run = run, run, twin
      print(
        f"report: {run['dir']} repeats {twin['dir']} (same config, seed "
        f"{run['config'].get('seed')}); counted once.",
        file=sys.stderr,
      )
  return list(groups.values())


def accuracies(group) -> list[float]:
  """The finished runs' test accuracies (unfinished runs are left out)."""
  return [r["result"]["test_accuracy"] for r in group if r["result"] is not None]


def mean_std(values) -> tuple[float | None, float | None]:
  """Mean and sample standard deviation (0 for one value; None for none)."""
  values = list(values)
  if not values:
    return None, None
  return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def percent_pm(values) -> str:
  """'89.12 ± 0.31% (3 seeds)' from fractions, or 'missing'."""
  mean, std = mean_std(values)
  if mean is None:
    return "missing"
  n = len(list(values))
  return f"{100 * mean:.2f} ± {100 * std:.2f}% ({n} seed{'s' if n > 1 else ''})"


def median_epoch_seconds(group) -> float | None:
  seconds = [r["epoch_seconds"] for r in group if r["epoch_seconds"]]
  return statistics.median(seconds) if seconds else None


def cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def describe_setup(runs) -> str:
  """'Fashion-MNIST (idx), 10 epochs, batch 64; machine: ...' from the runs' configs."""
  configs = [r["config"] for r in runs]
  names = sorted({f"{c['data']['name']} ({c['data']['source']})" for c in configs})
  epochs = sorted({c["num_epochs"] for c in configs})
  seeds = sorted({c.get("seed", 0) for c in configs})
  batches = sorted({c["batch_size"] for c in configs})
  training = sorted(
    {
      f"{c['optimizer']['name']} {c['schedule']['name']} lr {c['schedule']['learning_rate']}"
      for c in configs
    }
  )
  config_files = sorted({r["config_file"] for r in runs if r.get("config_file")})
  return (
    (f"Configs: {', '.join(config_files)}. " if config_files else "")
    + f"Data: {', '.join(names)}; epochs: {', '.join(map(str, epochs))}; batch: "
    f"{', '.join(map(str, batches))}; training: {'; '.join(training)}; seeds: "
    f"{', '.join(map(str, seeds))}. Machine: {cpu_name()}, "
    f"{os.cpu_count()} cores ({platform.system()}). Written {datetime.date.today()}."
  )


def markdown_table(header, rows) -> str:
  lines = [
    "| " + " | ".join(header) + " |",
    "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
  ]
  lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


def write_outputs(
  prefix: str, title: str, notes: list[str], header, rows, figure=None
) -> list[str]:
  """prefix.md (title, notes, table), prefix.csv and, if given, prefix.png; returns the paths."""
  os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
  paths = [prefix + ".md", prefix + ".csv"]
  with open(paths[0], "w") as f:
    command = "python " + " ".join(sys.argv)
    notes = [*notes, f"Report command: `{command}`."]
    f.write(f"# {title}\n\n" + "\n\n".join(notes) + "\n\n" + markdown_table(header, rows) + "\n")
    if figure is not None:
      f.write(f"\n![{title}]({os.path.basename(prefix)}.png)\n")
  with open(paths[1], "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  if figure is not None:
    figure.savefig(prefix + ".png", dpi=120, bbox_inches="tight")
    paths.append(prefix + ".png")
  return paths


def percent(value) -> str:
  return "missing" if value is None else f"{100 * value:.2f}%"


def hidden_layer(model_config: dict) -> dict:
  """FC-2's hidden-layer spec from a run's config: `layers.hidden`, or `hidden_layer` in runs
  made before every model took `layers`."""
  if "hidden_layer" in model_config:
    return model_config["hidden_layer"]
  return model_config.get("layers", {}).get("hidden", {"kind": "dense"})
