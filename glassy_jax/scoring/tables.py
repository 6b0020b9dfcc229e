"""Tables of scores per time index: one row per (model, data, index).

`glassy_jax.inference.evaluate` (checkpoints) and `glassy_jax.scoring.baselines` read the
files of a split and score predictions into rows through here, so their
tables have the same columns and mean the same numbers; they join, and
`plotting.correlation_vs_time` reads them back.
"""

import csv
import os
import warnings
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from glassy_jax import progress as progress_lib
from glassy_jax.formats import atomic
from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.scoring import metrics

# A row's scores: the keys of `metrics.score_split`.
SCORES = ("pearson_a", "pearson_a_std", "pearson_b", "pearson_b_std",
          "pooled_pearson_a", "l1_a", "l1_a_std", "l2_a", "l2_a_std")
# What a row is about (model: a checkpoint or a baseline), then its scores.
COLUMNS = ("model", "data", "temperature", "time_index", "time", "is_value",
           "num_files") + SCORES


def markdown_table(rows: Sequence[Dict[str, float]]) -> str:
  """The rows as a Markdown table (mean ± standard deviation over files)."""
  lines = ["| model | data | T | index | time | IS | Pearson A | Pearson B "
           "| pooled Pearson A | L1 A | L2 A |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    where = os.path.basename(os.path.normpath(str(r["data"])))
    lines.append(
        f"| {r['model']} | {where} | {r['temperature']:.3g} "
        f"| {r['time_index']} | {r['time']:.4g} | {r['is_value']:.3f} "
        f"| {r['pearson_a']:.4f} ± {r['pearson_a_std']:.4f} "
        f"| {r['pearson_b']:.4f} ± {r['pearson_b_std']:.4f} "
        f"| {r['pooled_pearson_a']:.4f} | {r['l1_a']:.4f} "
        f"| {r['l2_a']:.5f} |")
  return "\n".join(lines) + "\n"


def write_tables(prefix: str, rows: Sequence[Dict[str, float]],
                 title: str) -> None:
  """`PREFIX.md` (titled table), `PREFIX.csv` (all columns, full precision)."""
  with atomic.atomic_write(prefix + ".md", "w") as f:
    f.write(f"{title}\n\n{markdown_table(rows)}")
  with atomic.atomic_write(prefix + ".csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


def report(rows: Sequence[Dict[str, Any]], title: str,
           output: Optional[str]) -> None:
  """Prints the titled table; with `output`, also writes it (`write_tables`)."""
  print(f"{title}\n\n{markdown_table(rows)}", end="")
  if output:
    write_tables(output, rows, title)
    print(f"wrote {output}.md and {output}.csv")


class ScoredFile(NamedTuple):
  """What a row needs of one file: its structure (no targets), and per
  scored time index its targets, time and IS value."""
  snapshot: data.Snapshot
  time_indices: List[int]  # The scored ones, in order of `targets`.
  targets: List[np.ndarray]
  times: List[float]
  is_values: List[float]
  temperature: float
  # Other models' predictions shipped in the file (GlassBench's test files):
  # per model, [times, N] at every time index.
  field_predictions: Dict[str, np.ndarray] = {}


def _system_value(read: Callable[[], Any]) -> float:
  """`read()` as a float, NaN when the file does not record it."""
  try:
    return float(read())
  except (KeyError, IndexError, TypeError, ValueError):
    return float("nan")


def read_scored_files(paths: Sequence[str],
                      time_indices: Optional[Sequence[int]],
                      progress: bool = False) -> List[ScoredFile]:
  """Each file loaded once; only the structure and the chosen targets are
  kept (trajectories are large). `time_indices=None`: every index the first
  file has targets for, in order (`ScoredFile.time_indices`)."""
  files = []
  with progress_lib.bar(paths, desc="loading", unit="file", delay=2,
                        disable=not progress) as bar:
    for path in bar:
      system = layouts.load_system(path)
      if time_indices is None:
        time_indices = data.available_time_indices(system)
        if not time_indices:
          raise data.DataError(f"{path}: has no targets")
      files.append(ScoredFile(
          snapshot=data.to_snapshot(system, None, path),
          time_indices=list(time_indices),
          targets=[data.system_targets(system, k, path)
                   for k in time_indices],
          times=[data.system_time(system, k) for k in time_indices],
          is_values=[_system_value(lambda k=k: system["is_values"][k])
                     for k in time_indices],
          temperature=_system_value(
              lambda: system["metadata"]["temperature"]),
          field_predictions=system.get("field_predictions", {})))
  return files


def nanmean(values: Sequence[float]) -> float:
  """Mean of the finite values (NaN, without a warning, when there are none)."""
  finite = [v for v in values if np.isfinite(v)]
  return float(np.mean(finite)) if finite else float("nan")


def score_row(model: str, directory: str, time_index: int, column: int,
              files: Sequence[ScoredFile],
              predictions: Sequence[np.ndarray]) -> Dict[str, Any]:
  """The row of `model` at `time_index` (the files' target `column`):
  `metrics.score_split` of the predictions, with the files' mean time, IS
  value and temperature."""
  with warnings.catch_warnings():
    # Files with fewer than 2 B particles give NaN for B, reported as such.
    warnings.simplefilter("ignore", RuntimeWarning)
    summary = metrics.score_split(predictions,
                                  [f.targets[column] for f in files],
                                  [f.snapshot.types for f in files])
  return dict(
      {key: summary[key] for key in SCORES}, model=model, data=directory,
      temperature=nanmean([f.temperature for f in files]),
      time_index=int(time_index),
      time=nanmean([f.times[column] for f in files]),
      is_value=nanmean([f.is_values[column] for f in files]),
      num_files=len(files))
