"""Predicts propensities with a trained (or DeepMind's published) network.

The checkpoint is anything `checkpoints.load_params` reads: this project's
`.npz`, a TensorFlow 1 prefix (read without TensorFlow) or the name of a
checkpoint shipped with the package (`checkpoints.bundled_names()`:
`t044_s09` is DeepMind's published network). Inputs are DeepMind systems
(pickle or `.npz`, with targets), LAMMPS text dumps (every frame) and LAMMPS
data files. Frames of one size share one padded shape, so the jitted
network compiles once per size however many frames there are.

A joint multi-time checkpoint (`time_indices` in its metadata) predicts
every one of its time indices at once, column k being time index
`time_indices[k]`. The program, which writes predictions as arrays or
LAMMPS dumps, is `glassy_jax.programs.apply`.
"""

import dataclasses
import functools
from typing import (Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple)

import jax
import jraph
import numpy as np

from glassy_jax import progress as progress_lib
from glassy_jax.formats import atomic
from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.formats import layouts
from glassy_jax.formats import storage
from glassy_jax.network import model_inputs
from glassy_jax.network import models
from glassy_jax.physics import graphs
from glassy_jax.training import checkpoints

PredictFn = Callable[[jraph.GraphsTuple], jax.Array]
# Extra edge room when a shape is first compiled, so later frames of the same
# size (whose edge counts fluctuate) rarely force a recompilation.
_EDGE_HEADROOM = 1.05


def load_model(path: str, edge_chunk_size: Optional[int] = None
               ) -> Tuple[PredictFn, checkpoints.CheckpointMetadata]:
  """A jitted `predict_fn(graph) -> [n_node]` ([n_node, K] for a joint
  checkpoint, column k at `metadata.time_indices[k]`) and the metadata.

  Predictions are in target units: standardised training targets are undone
  with the metadata's `target_mean` / `target_std`. `edge_chunk_size`, when
  given, replaces the checkpoint's `model.edge_chunk_size`: the same
  function in bounded memory, for snapshots larger than the training ones.
  """
  params, metadata = checkpoints.load_params(path)
  config = metadata.model
  if edge_chunk_size is not None:
    config = dataclasses.replace(config, edge_chunk_size=edge_chunk_size)
  expected = models.param_shapes(config)
  actual = {m: {k: tuple(v.shape) for k, v in p.items()}
            for m, p in params.items()}
  misfits = sorted(module for module in expected.keys() | actual.keys()
                   if expected.get(module) != actual.get(module))
  if misfits:
    raise checkpoints.CheckpointError(
        f"{path}: parameters do not fit the network its model_config "
        f"describes ({len(misfits)} modules differ, e.g. {misfits[0]})")
  predict = models.make_predictor(models.make_network(config),
                                  metadata.target_mean, metadata.target_std)
  return functools.partial(predict, params), metadata


def predict_snapshots(predict_fn: PredictFn,
                      snapshots: Sequence[data.Snapshot],
                      inputs: Optional[model_inputs.InputSpec] = None,
                      batch_size: int = 1,
                      progress: bool = False) -> List[np.ndarray]:
  """Per-snapshot predictions [N_i] (or [N_i, K]), batching snapshots of
  equal size.

  Graphs are built one batch at a time, so memory stays bounded for long
  trajectories; each particle count gets one padded shape.
  """
  inputs = inputs or model_inputs.InputSpec()  # DeepMind's.
  buckets: Dict[int, List[int]] = {}
  for i, snapshot in enumerate(snapshots):
    buckets.setdefault(len(snapshot.types), []).append(i)
  results: List[Optional[np.ndarray]] = [None] * len(snapshots)
  bar = progress_lib.bar(total=len(snapshots), desc="predicting",
                         unit="frame", disable=not progress)
  with bar:
    for indices in buckets.values():
      budget = None
      for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        batch = [model_inputs.build_graph(snapshots[i], inputs)
                 for i in chunk]
        budget = _fitting_budget(budget, batch, batch_size)
        padded, _, _ = graphs.pad_batch(
            batch, [np.zeros(g.n_node[0], np.float32) for g in batch], budget)
        flat = np.asarray(predict_fn(padded))
        offsets = np.cumsum([0] + [int(g.n_node[0]) for g in batch])
        for k, i in enumerate(chunk):
          results[i] = flat[offsets[k]:offsets[k + 1]]
        bar.update(len(chunk))
  return results


def _fitting_budget(budget: Optional[graphs.PaddingBudget],
                    batch: Sequence[jraph.GraphsTuple],
                    batch_size: int) -> graphs.PaddingBudget:
  """`budget` if `batch` fits it, else a larger one with edge headroom."""
  needed = graphs.padding_budget(batch, batch_size)
  if budget is not None and needed.n_edge <= budget.n_edge and (
      needed.n_node <= budget.n_node):
    return budget
  return needed._replace(
      n_edge=graphs.round_edges(needed.n_edge * _EDGE_HEADROOM))


def at_time_index(arrays: Sequence[np.ndarray],
                  metadata: checkpoints.CheckpointMetadata,
                  time_index: int) -> List[np.ndarray]:
  """Per-frame predictions (or targets read at the checkpoint's indices) to
  score against the targets of `time_index`: a joint checkpoint's column of
  that index ([N_i, K] -> [N_i]); a single-index checkpoint's whole [N_i]."""
  if not metadata.time_indices:
    return list(arrays)
  if time_index not in metadata.time_indices:
    raise data.DataError(f"time index {time_index}: the checkpoint predicts "
                         f"time indices {metadata.time_indices} only")
  column = metadata.time_indices.index(time_index)
  return [a[:, column] for a in arrays]


# --------------------------------------------------------------------- inputs
class _Frame(NamedTuple):
  """One structure to predict, with what the LAMMPS writer needs."""
  snapshot: data.Snapshot
  lammps: lammps_io.Frame


def input_files(pattern: str) -> List[str]:
  """The file `pattern` names, or the files its glob matches (sorted)."""
  if storage.isfile(pattern):
    return [pattern]
  files = [f for f in storage.glob(pattern) if storage.isfile(f)]
  if not files:
    raise data.DataError(f"{pattern}: no such file (or no files match)")
  return files


def _is_system_file(path: str) -> bool:
  """DeepMind systems: `.npz`, or a pickle (protocol >= 2 starts with 0x80)."""
  if path.endswith(".npz"):
    return True
  with storage.open_file(path, "rb") as f:
    return f.read(1) == b"\x80"


def _is_dump(path: str) -> bool:
  with storage.open_file(path, "rb") as f:
    return f.read(256).lstrip().startswith(b"ITEM:")


def read_frames(path: str, time_index: data.TimeIndex) -> List[_Frame]:
  """Every frame of one input file; targets only from DeepMind systems."""
  if _is_system_file(path):
    system = layouts.load_system(path)
    wanted = time_index if data.num_targets(system) else None
    snapshot = data.to_snapshot(system, wanted, path)
    return [_Frame(snapshot, lammps_io.make_frame(
        snapshot.positions, snapshot.types, snapshot.box))]
  frames = (lammps_io.read_dump(path) if _is_dump(path)
            else [lammps_io.read_data(path)])
  return [_Frame(data.Snapshot(f.positions, f.types, f.box, None,
                               f"{path}@{f.timestep}"), f) for f in frames]


def save_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
  """Writes exactly `path` (`np.savez` given a name would append `.npz`),
  atomically."""
  with atomic.atomic_write(path) as f:
    np.savez(f, **arrays)
