"""Figures (PNG): learning curves, correlation vs time, predictions vs truth.

Drawn from a training workdir's `metrics.jsonl`, from the tables of
`glassy_jax.scoring.tables` (CSVs the evaluate and baselines programs write), or
from a checkpoint's predictions on a DeepMind system (pickle or `.npz`).
Each plot function returns a `matplotlib.figure.Figure` (Agg rendering, no
pyplot state) of a fixed size in pixels (`SIZES` x `DPI`); `save` writes
it. The program is `glassy_jax.programs.plot`.
"""

import csv
import io
import json
import os
import textwrap
from typing import Collection, Dict, List, NamedTuple, Optional, Sequence, Tuple

from matplotlib import collections as mcollections
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
import numpy as np
from PIL import Image

from glassy_jax import errors
from glassy_jax.formats import atomic
from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.formats import storage
from glassy_jax.inference import apply
from glassy_jax.scoring import metrics

DPI = 150
SIZES = {"curves": (10.0, 4.0), "correlation_vs_time": (6.0, 4.5),
         "scatter": (5.5, 5.0), "snapshot": (11.0, 5.0),
         "snapshot_prediction": (6.0, 5.0)}  # Inches.
# Kob-Andersen sigma_AA and sigma_BB, shrunk so that particles at different
# depths of a slab overlap less in projection.
_DRAWN_DIAMETERS = 0.75 * np.array([1.0, 0.88])
_TYPE_STYLE = (("A", "tab:blue"), ("B", "tab:red"))
_BASELINE_COLORS = ("tab:gray", "tab:brown", "tab:olive")


class PlotError(errors.UserError, ValueError):
  """An input cannot be plotted (one-line message)."""


def _figure(kind: str, ncols: int = 1) -> Tuple[Figure, List]:
  """A figure of the fixed size of `kind` (constrained layout keeps it)."""
  figure = Figure(figsize=SIZES[kind], dpi=DPI, layout="constrained")
  return figure, list(np.atleast_1d(figure.subplots(1, ncols)))


def _legend_below(ax, ncols: int = 3, **kwargs):
  """`ax`'s legend under the figure, off the data (constrained layout makes
  room for it)."""
  return ax.figure.legend(*ax.get_legend_handles_labels(),
                          loc="outside lower center", ncols=ncols,
                          fontsize="small", **kwargs)


def save(figure: Figure, output: str) -> str:
  """Writes `figure` as a 256-colour PNG (smaller files for the docs'
  figures: BUILD_NOTES.md, "Figure files") atomically; returns `output`.

  Max-coverage quantisation keeps rare colours (legend markers) exact.
  """
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=DPI)
  image = Image.open(buffer).convert("RGB").quantize(
      256, method=Image.Quantize.MAXCOVERAGE, kmeans=2)
  with atomic.atomic_write(output) as f:
    image.save(f, format="png", optimize=True)
  return output


# ---------------------------------------------------------- learning curves
def read_metrics(workdir: str) -> Dict[str, List[dict]]:
  """Train and test records of `metrics.jsonl`, one per step (the last).

  A resumed or rolled-back run logs some steps twice; the later record wins.
  """
  path = storage.join(workdir, "metrics.jsonl")
  if not storage.isfile(path):
    raise PlotError(f"{path}: no such file (is {workdir} a training workdir?)")
  by_split: Dict[str, Dict[int, dict]] = {"train": {}, "test": {}}
  with storage.open_file(path, "r") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
        by_split[record["split"]][int(record["step"])] = record
      except (ValueError, KeyError, TypeError):
        raise PlotError(f"{path}:{number}: not a metrics record") from None
  if not by_split["train"] and not by_split["test"]:
    raise PlotError(f"{path}: holds no records")
  return {split: [records[s] for s in sorted(records)]
          for split, records in by_split.items()}


def learning_curves(workdir: str) -> Figure:
  """Training loss (log scale) and test correlations against step."""
  records = read_metrics(workdir)
  figure, (loss_ax, r_ax) = _figure("curves", 2)
  train = records["train"]
  loss_ax.semilogy([r["step"] for r in train], [r["loss"] for r in train],
                   color="tab:gray", lw=1)
  loss_ax.set(xlabel="step", ylabel="training loss (MSE on A)",
              title="training loss")
  test = records["test"]
  steps = np.array([r["step"] for r in test])
  mean = np.array([r["pearson_a"] for r in test])
  std = np.array([r.get("pearson_a_std", 0.0) for r in test])
  color_a, color_b = _TYPE_STYLE[0][1], _TYPE_STYLE[1][1]
  r_ax.plot(steps, mean, "o-", ms=3, color=color_a,
            label="A (mean ± std over test files)")
  r_ax.fill_between(steps, mean - std, mean + std, color=color_a, alpha=0.2)
  r_ax.plot(steps, [r.get("pearson_b", np.nan) for r in test], "s-", ms=3,
            color=color_b, label="B")
  if test and "pooled_pearson_a" in test[0]:
    r_ax.plot(steps, [r["pooled_pearson_a"] for r in test], "--",
              color=color_a, lw=1, label="A pooled over files")
  r_ax.set(xlabel="step", ylabel="Pearson r", title="test correlation")
  r_ax.grid(alpha=0.3)
  _legend_below(r_ax)
  figure.suptitle(os.path.basename(os.path.abspath(workdir)))
  return figure


def time_to_accuracy(workdirs: Dict[str, str],
                     thresholds: Sequence[float] = ()) -> Figure:
  """Test correlation against wall time (`elapsed_s`), one line per run:
  recipes compared by what a person waits, not by steps."""
  figure, (axes,) = _figure("correlation_vs_time")
  for label, workdir in workdirs.items():
    test = [r for r in read_metrics(workdir)["test"] if "elapsed_s" in r]
    if not test:
      raise PlotError(f"{workdir}: no test record with elapsed_s (written "
                      "by training since time-to-accuracy was added)")
    axes.plot([r["elapsed_s"] / 60 for r in test],
              [r["pearson_a"] for r in test], "o-", ms=3, label=label)
  for threshold in thresholds:
    axes.axhline(threshold, color="tab:gray", lw=0.7, ls="--")
  axes.set(xlabel="wall time (min), loading and compiling included",
           ylabel="test Pearson r, A particles",
           title="learning from scratch")
  axes.grid(alpha=0.3)
  _legend_below(axes)
  return figure


# ---------------------------------------------------- correlation vs time
def read_table(path: str) -> Dict[Tuple[str, str], Dict[str, np.ndarray]]:
  """A table CSV (`glassy_jax.scoring.tables`, written by the evaluate or baselines
  program) as float columns sorted by time, per (model, data directory) of
  its rows."""
  try:
    with storage.open_file(path, "r", newline="") as f:
      rows = list(csv.DictReader(f))
    groups: Dict[Tuple[str, str], List[dict]] = {}
    for row in rows:
      groups.setdefault((row.get("model", ""), row.get("data", "")),
                        []).append(row)
    tables = {key: {column: np.array([float(r[column]) for r in members])
                    for column in ("time", "pearson_a", "pearson_a_std",
                                   "pearson_b")}
              for key, members in groups.items()}
  except (KeyError, ValueError, TypeError):
    raise PlotError(f"{path}: not a table written by glassy-evaluate or "
                    "glassy-baselines") from None
  if not rows or not all(np.all(np.isfinite(t["time"]))
                         for t in tables.values()):
    raise PlotError(f"{path}: needs a finite time in every row (the data "
                    "files must carry time and time_indices)")
  return {key: {column: values[np.argsort(table["time"])]
                for column, values in table.items()}
          for key, table in tables.items()}


def correlation_vs_time(tables: Sequence[str], labels: Sequence[str],
                        baselines: Collection[str] = ()) -> Figure:
  """Pearson r against time, log axis: each network's A (with its std band)
  and B (dotted), and the A of the rows whose model is one of `baselines`
  (names of yardsticks, such as `glassy_jax.scoring.baselines.BASELINES`') as
  dashed lines."""
  if len(labels) != len(tables):
    raise PlotError(f"{len(labels)} labels for {len(tables)} tables")
  figure, (ax,) = _figure("correlation_vs_time")
  drawn_baselines = 0
  models = 0
  for path, label in zip(tables, labels):
    groups = read_table(path)
    directories = {directory for _, directory in groups}
    for (model, directory), table in groups.items():
      name = label if len(directories) == 1 else (
          f"{label} on {os.path.basename(os.path.normpath(directory))}")
      t, mean = table["time"], table["pearson_a"]
      if model in baselines:
        ax.plot(t, mean, "--", lw=1.2, label=f"{model}: A",
                color=_BASELINE_COLORS[drawn_baselines % 3])
        drawn_baselines += 1
        continue
      color, std = f"C{models}", table["pearson_a_std"]
      models += 1
      ax.plot(t, mean, "o-", color=color, label=f"{name}: A")
      ax.fill_between(t, mean - std, mean + std, color=color, alpha=0.2)
      ax.plot(t, table["pearson_b"], "s:", color=color, mfc="none",
              label=f"{name}: B")
  ax.set_xscale("log")
  ax.set(xlabel="time (LJ units)", ylabel="Pearson r (predicted vs true)",
         title="correlation vs time")
  ax.grid(alpha=0.3)
  _legend_below(ax, ncols=4)
  return figure


# ----------------------------------------------- predictions of one file
class Prediction(NamedTuple):
  """A file's structure, targets (or None), predictions and target time."""
  snapshot: data.Snapshot
  predictions: np.ndarray
  time_index: int
  time: float


def predict_file(checkpoint: str, path: str,
                 time_index: Optional[int] = None) -> Prediction:
  """Predicts one DeepMind system; targets at `time_index` when it has any."""
  predict_fn, metadata = apply.load_model(checkpoint)
  if time_index is None:
    time_index = (metadata.time_indices[0] if metadata.time_indices
                  else metadata.time_index)
  system = layouts.load_system(path)
  snapshot = data.to_snapshot(
      system, time_index if data.num_targets(system) else None, path)
  predictions = apply.at_time_index(
      apply.predict_snapshots(predict_fn, [snapshot],
                              inputs=metadata.input_spec()),
      metadata, time_index)[0]
  return Prediction(snapshot, predictions, time_index,
                    data.system_time(system, time_index))


def describe(prediction: Prediction) -> str:
  """A figure title: the file and the target time."""
  name = os.path.basename(prediction.snapshot.name)
  when = (f"t = {prediction.time:.3g}" if np.isfinite(prediction.time)
          else f"time index {prediction.time_index}")
  return f"{name}, {when}"


def scatter(predictions: np.ndarray, targets: np.ndarray, types: np.ndarray,
            title: str = "") -> Figure:
  """Predicted against true propensity, A and B apart, r in the legend."""
  figure, (ax,) = _figure("scatter")
  for kind, (name, color) in enumerate(_TYPE_STYLE):
    chosen = types == kind
    r = metrics.pearson(predictions[chosen], targets[chosen])
    ax.scatter(targets[chosen], predictions[chosen], s=4, alpha=0.35, lw=0,
               color=color, label=f"{name} (n = {chosen.sum()}, r = {r:.3f})")
  # An infinite line through (mean target, mean target) stretches the limits
  # at most to that point, however far off (untrained) predictions are.
  middle = float(np.mean(targets))
  ax.axline((middle, middle), slope=1, ls="--", color="0.4", lw=1,
            label="y = x")
  ax.set(xlabel="true propensity (σ)", ylabel="predicted propensity (σ)")
  ax.set_title(textwrap.fill(title, 50), fontsize="medium")
  legend = _legend_below(ax, markerscale=3)
  for handle in legend.legend_handles:
    handle.set_alpha(1)
  return figure


def slab_view(positions: np.ndarray, box: np.ndarray, types: np.ndarray,
              predictions: np.ndarray, targets: Optional[np.ndarray],
              title: str = "", thickness: float = 2.0) -> Figure:
  """Particles of the slab |z - L_z/2| < thickness/2, coloured by propensity.

  Only A particles are coloured: the networks are trained and scored on A,
  and B predictions (a different scale) would swamp the colours. Predicted
  and true panels share one scale (1st-99th percentile of both), so colours
  compare directly; without targets only the prediction is drawn.
  """
  wrapped = np.mod(positions, box)
  in_slab = np.abs(wrapped[:, 2] - box[2] / 2) < thickness / 2
  # Deepest first, so the particles nearest the viewer are drawn on top.
  order = np.flatnonzero(in_slab)[np.argsort(wrapped[in_slab, 2])]
  is_a = types[order] == 0
  if not is_a.any():
    raise PlotError(f"no A particle in the {thickness:g}σ slab")
  panels = [("predicted", predictions)]
  if targets is not None:
    panels.append(("true", targets))
  shown = np.concatenate([values[order][is_a] for _, values in panels])
  norm = mcolors.Normalize(*np.percentile(shown, [1, 99]))
  cmap = colormaps["viridis"].with_extremes(bad="0.85")
  figure, axes = _figure("snapshot" if targets is not None
                         else "snapshot_prediction", len(panels))
  diameters = _DRAWN_DIAMETERS[types[order]]
  for ax, (name, values) in zip(axes, panels):
    circles = mcollections.EllipseCollection(
        diameters, diameters, np.zeros(len(order)), units="xy",
        offsets=wrapped[order, :2], offset_transform=ax.transData,
        cmap=cmap, norm=norm, edgecolors="0.2", linewidths=0.3)
    circles.set_array(np.ma.masked_array(values[order], mask=~is_a))
    ax.add_collection(circles)
    ax.set(xlim=(0, box[0]), ylim=(0, box[1]), aspect="equal",
           xlabel="x (σ)", ylabel="y (σ)", title=f"{name} propensity")
  figure.colorbar(circles, ax=axes, shrink=0.85, extend="both",
                  label="propensity of A particles (σ)")
  subtitle = (f"{len(order)} particles of a {thickness:g}σ slab through the "
              "box mid-plane; B particles small, grey")
  figure.suptitle("\n".join(
      textwrap.fill(line, 50 * len(panels), break_on_hyphens=False)
      for line in (title, subtitle)))
  return figure
