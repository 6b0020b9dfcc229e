"""Scores a checkpoint against every time index of a dataset split.

A model trained on one time index is scored against the targets of every
index: this is DeepMind's correlation-versus-time figure; a joint model
(`data.time_indices`) is scored at each of its indices with that index's
output. The structure of a file does not change with the index, so each
file is predicted once and only the targets change. Per index: Pearson r on
A and on B (mean and standard deviation over files), pooled Pearson r on A,
L1 and L2 on A, the time (mean over files) and the self intermediate
scattering value, in the rows of `glassy_jax.scoring.tables`.

The program (`glassy_jax.programs.evaluate`) scores several data
directories, with the temperature their files record (a network trained at
one temperature scored at others), and adds the rows of the physical
baselines (`glassy_jax.scoring.baselines`), the yardsticks a network's numbers are
read against.
"""

from typing import Any, Dict, List, Optional, Sequence

from glassy_jax.formats import layouts
from glassy_jax.inference import apply
from glassy_jax.scoring import tables

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
