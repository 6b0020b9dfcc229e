"""Scores a checkpoint against every time index of a dataset split.

  python -m glassy_jax.evaluate --checkpoint=runs/bapst/checkpoints/best.npz \
      --data=DIR[,DIR2,...] [--split=test] [--time_indices=0,9] \
      [--baselines=epot,density,radial_ridge] [--output=PREFIX]

A model trained on one time index is scored against the targets of every
index: this is DeepMind's correlation-versus-time figure; a joint model
(`data.time_indices`) is scored at each of its indices with that index's
output. The structure of a file does not change with the index, so each
file is predicted once and only the targets change. Per index: Pearson r on
A and on B (mean and standard deviation over files), pooled Pearson r on A,
L1 and L2 on A, the time (mean over files) and the self intermediate
scattering value. The Markdown table is printed; `--output=PREFIX` also
writes `PREFIX.md` and `PREFIX.csv`.

Several data directories give rows for each, with the temperature their
files record: a network trained at one temperature scored at others.
`--baselines` adds the rows of physical baselines (`glassy_jax.baselines`,
fitted on each directory's `train/` split) to the table, the yardsticks a
network's numbers are read against.
"""

import os
from typing import Any, Dict, List, Optional, Sequence

from absl import flags

from glassy_jax import apply
from glassy_jax import baselines
from glassy_jax import cli
from glassy_jax import data
from glassy_jax import layouts
from glassy_jax import tables

_BATCH_SIZE = 4


def evaluate_checkpoint(checkpoint: str, directory: str, split: str = "test",
                        time_indices: Optional[Sequence[int]] = None,
                        max_files: Optional[int] = None
                        ) -> List[Dict[str, Any]]:
  """One row of metrics per time index (keys: `tables.COLUMNS`).

  `time_indices=None` means every index the first file has targets for.
  """
  paths = layouts.list_files(directory, split, max_files)
  predict_fn, metadata = apply.load_model(checkpoint)
  if time_indices is None and metadata.time_indices:
    time_indices = metadata.time_indices  # A joint checkpoint's own.
  files = tables.read_scored_files(paths, time_indices)
  if time_indices is None:
    time_indices = files[0].time_indices
  predictions = apply.predict_snapshots(
      predict_fn, [f.snapshot for f in files], inputs=metadata.input_spec(),
      batch_size=_BATCH_SIZE, progress=len(files) > _BATCH_SIZE)
  rows = [tables.score_row(checkpoint, directory, time_index, column, files,
                           apply.at_time_index(predictions, metadata,
                                               time_index))
          for column, time_index in enumerate(time_indices)]
  return rows + field_rows(directory, files, time_indices)


def field_rows(directory: str, files: Sequence[tables.ScoredFile],
               time_indices: Sequence[int]) -> List[Dict[str, Any]]:
  """Rows of the field's models whose predictions the files carry
  (GlassBench's BOTAN, CAGE, GlassMLP, SE(3)), on the same configurations:
  named by their keys, scored like ours."""
  shared = set.intersection(*(set(f.field_predictions) for f in files))
  return [tables.score_row(
      f"field:{name}", directory, time_index, column, files,
      [f.field_predictions[name][time_index] for f in files])
          for name in sorted(shared)
          for column, time_index in enumerate(time_indices)]


# ------------------------------------------------------------------------ CLI
def _define_flags() -> None:
  """Flags exist only when run as a program: importers define their own."""
  flags.DEFINE_string("checkpoint", None,
                      "Project checkpoint (.npz), TF checkpoint prefix or "
                      "bundled name (t044_s09).")
  flags.DEFINE_list("data", None, "Dataset directories (DIR/split/"
                    "aggregated*), comma-separated: rows for each.")
  flags.DEFINE_string("split", "test", "Subdirectory of --data to score.")
  flags.DEFINE_list("time_indices", None,
                    "Comma-separated time indices (default: all).")
  flags.DEFINE_list("baselines", [], "Baselines to add to the table "
                    "(glassy_jax.baselines: epot, density, radial_ridge, "
                    "coarse_ridge, coarse_ridge_inherent), "
                    "fitted on each directory's train split.")
  flags.DEFINE_string("output", None, "Write PREFIX.md and PREFIX.csv.")
  flags.DEFINE_integer("max_files", 0, "At most this many files (0 = all).",
                       lower_bound=0)
  flags.mark_flags_as_required(["checkpoint", "data"])


def main(args: flags.FlagValues) -> None:
  missing = [d for d in args.data if not os.path.isdir(d)]
  if missing:
    raise data.DataError(f"{missing[0]}: no such directory")
  time_indices = cli.parse_indices(args.time_indices)
  max_files = args.max_files or None
  rows = []
  for directory in args.data:
    scored = evaluate_checkpoint(args.checkpoint, directory, args.split,
                                 time_indices, max_files)
    rows += scored
    if args.baselines:
      rows += baselines.evaluate_baselines(
          directory, args.baselines, [r["time_index"] for r in scored],
          split=args.split, max_files=max_files)
  title = (f"{args.checkpoint} on the {args.split} split of "
           f"{', '.join(args.data)}")
  tables.report(rows, title, args.output)


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
