"""Scores a checkpoint against every time index of a dataset split.

  python -m glassy_jax.evaluate --checkpoint=runs/bapst/checkpoints/best.npz \
      --data=DIR [--split=test] [--time_indices=0,9] [--output=PREFIX]

A model trained on one time index is scored against the targets of every
index: this is DeepMind's correlation-versus-time figure. The structure of a
file does not change with the index, so each file is predicted once and only
the targets change. Per index: Pearson r on A and on B (mean and standard
deviation over files), pooled Pearson r on A, L1 and L2 on A, the time (mean
over files) and the self intermediate scattering value. The Markdown table is
printed; `--output=PREFIX` also writes `PREFIX.md` and `PREFIX.csv`.
"""

import csv
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence

from absl import flags
import numpy as np

from glassy_jax import apply
from glassy_jax import atomic
from glassy_jax import cli
from glassy_jax import data
from glassy_jax import metrics

COLUMNS = ("time_index", "time", "is_value", "num_files", "pearson_a",
           "pearson_a_std", "pearson_b", "pearson_b_std", "pooled_pearson_a",
           "l1_a", "l1_a_std", "l2_a", "l2_a_std")
_BATCH_SIZE = 4


def system_time(system: Dict[str, Any], time_index: int) -> float:
  """The time of `time_index` (`time[time_indices[k]]`), NaN if not stored."""
  try:
    return float(system["time"][int(system["time_indices"][time_index])])
  except (KeyError, IndexError, TypeError):
    return float("nan")


def system_is_value(system: Dict[str, Any], time_index: int) -> float:
  """The self intermediate scattering value of `time_index`, NaN if absent."""
  try:
    return float(system["is_values"][time_index])
  except (KeyError, IndexError, TypeError):
    return float("nan")


def _nanmean(values: Sequence[float]) -> float:
  """Mean of the finite values (NaN, without a warning, when there are none)."""
  finite = [v for v in values if np.isfinite(v)]
  return float(np.mean(finite)) if finite else float("nan")


def evaluate_checkpoint(checkpoint: str, directory: str, split: str = "test",
                        time_indices: Optional[Sequence[int]] = None,
                        max_files: Optional[int] = None
                        ) -> List[Dict[str, float]]:
  """One row of metrics per time index (keys: `COLUMNS`).

  `time_indices=None` means every index the first file has targets for.
  """
  files = data.list_files(directory, split, max_files)
  predict_fn, metadata = apply.load_model(checkpoint)
  snapshots, targets, times, is_values = [], [], [], []
  for path in files:
    # Only the snapshot and the targets are kept: trajectories are large.
    system = data.load_system(path)
    if time_indices is None:
      time_indices = range(data.num_targets(system))
      if not time_indices:
        raise data.DataError(f"{path}: has no targets")
    snapshots.append(data.to_snapshot(system, None, path))
    targets.append([data.system_targets(system, k, path)
                    for k in time_indices])
    times.append([system_time(system, k) for k in time_indices])
    is_values.append([system_is_value(system, k) for k in time_indices])
  predictions = apply.predict_snapshots(
      predict_fn, snapshots,
      cutoff=metadata.cutoff, batch_size=_BATCH_SIZE, progress=len(files) > _BATCH_SIZE)
  types = [s.types for s in snapshots]

  rows = []
  for column, time_index in enumerate(time_indices):
    truth = [t[column] for t in targets]
    with warnings.catch_warnings():
      # Files with fewer than 2 B particles give NaN for B, reported as such.
      warnings.simplefilter("ignore", RuntimeWarning)
      summary = metrics.score_split(predictions, truth, types)
    rows.append(dict(
        {key: summary[key] for key in COLUMNS[4:]},
        time_index=int(time_index),
        time=_nanmean([t[column] for t in times]),
        is_value=_nanmean([v[column] for v in is_values]),
        num_files=len(files)))
  return rows


def markdown_table(rows: Sequence[Dict[str, float]]) -> str:
  """The rows as a Markdown table (mean ± standard deviation over files)."""
  lines = ["| index | time | IS | Pearson A | Pearson B | pooled Pearson A "
           "| L1 A | L2 A |", "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(
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


def parse_indices(text: Optional[Sequence[str]]) -> Optional[List[int]]:
  """`--time_indices` as integers (None = all)."""
  if not text:
    return None
  try:
    return [int(k) for k in text]
  except ValueError:
    raise data.DataError(
        f"--time_indices must be integers, got {','.join(text)}") from None


# ------------------------------------------------------------------------ CLI
def _define_flags() -> None:
  """Flags exist only when run as a program: importers define their own."""
  flags.DEFINE_string("checkpoint", None,
                      "Project checkpoint (.npz), TF checkpoint prefix or "
                      "bundled name (t044_s09).")
  flags.DEFINE_string("data", None,
                      "Dataset directory (DIR/split/aggregated*).")
  flags.DEFINE_string("split", "test", "Subdirectory of --data to score.")
  flags.DEFINE_list("time_indices", None,
                    "Comma-separated time indices (default: all).")
  flags.DEFINE_string("output", None, "Write PREFIX.md and PREFIX.csv.")
  flags.DEFINE_integer("max_files", 0, "At most this many files (0 = all).",
                       lower_bound=0)
  flags.mark_flags_as_required(["checkpoint", "data"])


def main(args: flags.FlagValues) -> None:
  if not os.path.isdir(args.data):
    raise data.DataError(f"{args.data}: no such directory")
  rows = evaluate_checkpoint(args.checkpoint, args.data, args.split,
                             parse_indices(args.time_indices),
                             args.max_files or None)
  title = (f"{args.checkpoint} on {os.path.join(args.data, args.split)} "
           f"({rows[0]['num_files']} files)")
  print(f"{title}\n\n{markdown_table(rows)}", end="")
  if args.output:
    write_tables(args.output, rows, title)
    print(f"wrote {args.output}.md and {args.output}.csv")


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
