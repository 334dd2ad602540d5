"""A rank search's report (rank_search.SearchResult): its markdown and its front's plot."""

from __future__ import annotations

from tnjax import fileio
from tnjax.nn import registry


def markdown(result) -> str:
  """The search's report: the chosen sizes, the search's cost, and the front."""
  source = result.source
  lines = [
    f"# Search: budget {result.budget}",
    "",
    f"Source: {source['weights']:,} weights in the planned layers, validation loss "
    f"{source['loss']:.4f}"
    + (f", accuracy {100 * source['accuracy']:.2f}%" if "accuracy" in source else "")
    + ".",
    "",
    "## Chosen",
    "",
    "| layer | format | sizes | weights before | after | compression |",
    "|---|---|---|---:|---:|---:|",
  ]
  for row in result.rows:
    fields = registry.spec_class(row["format"]).size_fields
    sizes = ", ".join(f"{k}={row['spec'][k]}" for k in fields if k in row["spec"])
    lines.append(
      f"| {row['name']} | {row['format']} | {sizes} | {row['weights_before']:,} | "
      f"{row['weights_after']:,} | {row['compression']:.1f}x |"
    )
  epochs = (
    f" ({result.finetunes * result.finetune_epochs:g} epochs)" if (result.finetune_epochs) else ""
  )
  lines += [
    "",
    f"Search cost: {result.finetunes} fine-tune(s){epochs}. Target "
    + ("met." if result.chosen.get("met", True) else "NOT met: the largest model tried."),
    "",
    "## Front",
    "",
    "| weights | compression | summed sensitivity loss | FLOPs | latency ms | val. accuracy | chosen |",
    "|---:|---:|---:|---:|---:|---:|---|",
  ]
  for point in result.front:
    latency = next((v for k, v in point.items() if k.startswith("latency_ms")), None)
    lines.append(
      f"| {point['weights']:,} | {source['weights'] / point['weights']:.1f}x | "
      f"{point['sensitivity_loss']:.3f} | {_cell(point.get('flops'), '{:,.0f}')} | "
      f"{_cell(latency, '{:.3f}')} | {_cell(point.get('accuracy'), '{:.2%}')} | "
      f"{'yes' if point['specs'] == result.chosen['specs'] else ''} |"
    )
  return "\n".join(lines) + "\n"


def plot_front(result, path) -> None:
  """Validation accuracy (where fine-tuned) and summed sensitivity loss against weights of
  every front model, and latency where measured; the chosen one marked."""
  from tnjax import extras  # pylint: disable=g-import-not-at-top

  extras.require("matplotlib", "the search's front plot")
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  front = result.front
  latency_key = next((k for p in front for k in p if k.startswith("latency_ms")), None)
  panels = 2 + (latency_key is not None)
  figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
  weights = [p["weights"] for p in front]
  axes[0].plot(weights, [p["sensitivity_loss"] for p in front], "o-", color="C0")
  axes[0].set_ylabel("summed validation loss (layers alone)")
  tried = [p for p in front if "accuracy" in p]
  axes[1].plot([p["weights"] for p in tried], [100 * p["accuracy"] for p in tried], "s", color="C1")
  if "accuracy" in result.source:
    axes[1].axhline(100 * result.source["accuracy"], color="gray", ls="--", label="source")
    if "accuracy_drop" in result.budget:
      need = 100 * result.source["accuracy"] - result.budget["accuracy_drop"]
      axes[1].axhline(need, color="red", ls=":", label="source - accuracy_drop")
    axes[1].legend(fontsize=7)
  axes[1].set_ylabel("validation accuracy after fine-tuning (%)")
  if latency_key is not None:
    axes[2].plot(weights, [p.get(latency_key) for p in front], "o-", color="C2")
    axes[2].axhline(result.budget.get("latency_ms", float("nan")), color="gray", ls="--")
    axes[2].set_ylabel(f"forward ms ({latency_key.split('_')[-1]})")
  for axis in axes:
    axis.set_xscale("log")
    axis.set_xlabel("weights of the planned layers")
    axis.axvline(result.chosen["weights"], color="red", lw=0.8)
  figure.suptitle(f"budget {result.budget}: chosen {result.chosen['weights']:,} weights (red)")
  figure.tight_layout()
  with fileio.Path(path).open("wb") as out:
    figure.savefig(out, format="png", dpi=110)
  plt.close(figure)


def _cell(value, form: str) -> str:
  return "-" if value is None else form.format(value)
