"""Reading finished runs of sweep workdirs and writing tables (markdown, CSV) and figures.

A run is a directory with config.json and result.json (written by the trainer);
a sweep workdir holds one run per sub-directory (tnjax.sweep). Report scripts pass
any mix of sweep workdirs and single run directories.
"""

from __future__ import annotations

import csv
import datetime
import os
import platform
import statistics


import matplotlib

from tnjax import fileio

matplotlib.use("Agg")


def _is_run(path) -> bool:
  return (fileio.Path(path) / "config.json").exists()


def load_runs(workdirs) -> list[dict]:
  """Every run under `workdirs` (local or gs://): {'dir', 'config', 'result' (None if
  unfinished), 'epoch_seconds'}."""
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
    for path in paths:
      runs.append(load_run(path))
  return runs


def load_run(path) -> dict:
  path = fileio.workdir_path(path)
  config = fileio.read_json(path / "config.json")
  result = fileio.read_json(path / "result.json")
  seconds = [
    r["epoch_seconds"] for r in fileio.read_jsonl(path / "metrics.jsonl") if "epoch_seconds" in r
  ]
  return {
    "dir": str(path),
    "config": config,
    "result": result,
    "epoch_seconds": statistics.median(seconds) if seconds else None,
  }


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
  batches = sorted({c["batch_size"] for c in configs})
  training = sorted(
    {
      f"{c['optimizer']['name']} {c['schedule']['name']} lr {c['schedule']['learning_rate']}"
      for c in configs
    }
  )
  return (
    f"Data: {', '.join(names)}; epochs: {', '.join(map(str, epochs))}; batch: "
    f"{', '.join(map(str, batches))}; training: {'; '.join(training)}. Machine: {cpu_name()}, "
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
