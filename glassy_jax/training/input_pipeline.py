"""The input pipeline: datasets, target scale, size buckets, batches.

Training reads a split once into host memory as unpadded graphs
(`Dataset`). Graphs of different sizes are grouped into size buckets (node
counts rounded up to `data.bucket_nodes`), each with its own padding budget,
so small snapshots are not padded to the largest; a step draws all its
graphs from one bucket and each bucket compiles once.

The data order of epoch e is a permutation seeded by (seed, e): the step
counter alone says where a run is, which makes resumption exact. With P
processes, process p reads only files p::P of each split and draws its part
of every step from its shard; sizes and target statistics are gathered from
every process, so all processes agree on buckets, budgets and steps.
"""

import os
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

from absl import logging
import jax
import jraph
import numpy as np

from glassy_jax import progress as progress_lib
from glassy_jax.formats import data as data_lib
from glassy_jax.formats import layouts
from glassy_jax.network import model_inputs
from glassy_jax.physics import bond_targets
from glassy_jax.physics import graphs as graphs_lib
from glassy_jax.training import distributed
from glassy_jax.training import run_config

DEMO_DATA = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo_data")


class Dataset(NamedTuple):
  """Graphs of one split with their targets, unpadded, on the host."""
  graphs: List[jraph.GraphsTuple]
  # [N] float32 each, or [N, K] at K time indices; in physical units.
  targets: List[np.ndarray]
  types: List[np.ndarray]  # [N] int32 each.
  names: List[str]
  # (p, P): these are files p::P of the split; graph i is file p + i * P.
  shard: Tuple[int, int] = (0, 1)
  # [E] per graph, BOTAN's bond targets of its edges (`bond_targets`):
  # physical units from `load_dataset`, standardised for training.
  edge_targets: Optional[List[np.ndarray]] = None

  def file_index(self, i: int) -> int:
    """Index in the whole split: keys augmentation the same on any layout."""
    return self.shard[0] + i * self.shard[1]


class Batch(NamedTuple):
  """What a device receives per step; leading [devices] axis when pmapped."""
  graph: jraph.GraphsTuple  # Padded to the run's budget.
  targets: np.ndarray  # [n_node] or [n_node, K], standardised if configured.
  loss_mask: np.ndarray  # [n_node] bool: real type-A particles.
  first_graph: np.ndarray  # [] int32: dataset index; keys the augmentation.
  # With bond targets (train.bond_target_weight > 0): [n_edge] standardised
  # targets and the mask of the edges that have one.
  edge_targets: Optional[np.ndarray] = None
  edge_mask: Optional[np.ndarray] = None


class TargetScale(NamedTuple):
  """Targets are trained as (t - mean) / std; (0, 1) when not standardised.
  [K] arrays when standardising targets at K time indices: each index has
  its own scale."""
  mean: Union[float, np.ndarray]
  std: Union[float, np.ndarray]


def data_directory(data: run_config.DataConfig) -> str:
  if data.directory:
    return data.directory
  logging.info("data.directory is unset: using the bundled demo data in %s. "
               "For DeepMind's dataset pass --config.data.directory=DIR "
               "(DIR/train/aggregated*, DIR/test/aggregated*).", DEMO_DATA)
  return DEMO_DATA


def load_dataset(directory: str, split: str, time_index: data_lib.TimeIndex,
                 inputs: model_inputs.InputSpec, max_files: int = 0,
                 shard: Tuple[int, int] = (0, 1),
                 select: slice = slice(None),
                 with_bond_targets: bool = False) -> Dataset:
  """Builds the input graphs (descriptors unstandardised) of files p::P of
  the split's files[select], (p, P) = `shard`: each process of a multi-host
  run reads only its own files. Targets at one time index, or [N, K] at a
  sequence of them; with `with_bond_targets`, also each edge's."""
  files = layouts.list_files(directory, split, max_files or None)[select]
  process, num_processes = shard
  if len(files) < num_processes:
    raise data_lib.DataError(
        f"{len(files)} {split} files cannot give each of {num_processes} "
        "processes one")
  graphs, snapshots, edge_targets = [], [], []
  for path in progress_lib.bar(files[process::num_processes],
                           desc=f"reading {split}", unit="file",
                           disable=process != 0):
    snapshot = layouts.load_snapshot(path, time_index, with_bond_targets)
    graph = model_inputs.raw_graph(snapshot, inputs)
    if with_bond_targets:
      edge_targets.append(bond_targets.bond_change(snapshot, graph.senders,
                                                   graph.receivers))
    graphs.append(graph)
    snapshots.append(snapshot._replace(displacements=None))
  return Dataset(
      graphs=graphs, targets=[s.targets for s in snapshots],
      types=[s.types for s in snapshots],
      names=[s.name for s in snapshots], shard=shard,
      edge_targets=edge_targets if with_bond_targets else None)


def _standardised(dataset: Dataset, inputs: model_inputs.InputSpec
                  ) -> Dataset:
  return dataset._replace(graphs=[model_inputs.standardise(g, inputs)
                                  for g in dataset.graphs])


def _bond_standardised(dataset: Dataset) -> Dataset:
  """Bond targets as (b - mean) / std over every process's training pairs
  (self-pairs left out), as `target_scale` does for the propensities."""
  pairs = distributed.allgather_rows(np.concatenate([
      t[bond_targets.pair_mask(g.senders, g.receivers)]
      for t, g in zip(dataset.edge_targets, dataset.graphs)]).astype(
          np.float64))
  mean, std = pairs.mean(), pairs.std()
  return dataset._replace(edge_targets=[
      ((t - mean) / std).astype(np.float32) for t in dataset.edge_targets])


def target_scale(dataset: Dataset, standardize: bool) -> TargetScale:
  """Statistics of the type-A targets of every process's shard."""
  if not standardize:
    return TargetScale(0.0, 1.0)
  values = distributed.allgather_rows(np.concatenate(
      [t[ty == 0] for t, ty in zip(dataset.targets, dataset.types)]))
  if values.ndim == 2:  # Per time index.
    return TargetScale(values.mean(axis=0), values.std(axis=0))
  return TargetScale(float(values.mean()), float(values.std()))


def make_batch(dataset: Dataset, indices: Sequence[int],
               budget: graphs_lib.PaddingBudget, scale: TargetScale) -> Batch:
  graph, targets, mask = graphs_lib.pad_batch(
      [dataset.graphs[i] for i in indices],
      [(dataset.targets[i] - scale.mean) / scale.std for i in indices], budget)
  types = graph.nodes[:, 0]
  batch = Batch(graph, targets, mask & (types == 0),
                np.int32(dataset.file_index(indices[0])))
  if dataset.edge_targets is None:
    return batch
  return batch._replace(
      edge_targets=graphs_lib.pad_edge_values(
          [dataset.edge_targets[i] for i in indices], len(graph.senders)),
      edge_mask=bond_targets.pair_mask(graph.senders, graph.receivers))


def stack_batches(batches: Sequence[Batch]) -> Batch:
  """One batch per local device -> arrays with a leading device axis."""
  return jax.tree.map(lambda *xs: np.stack(xs), *batches)


class SizeBucket(NamedTuple):
  """Graphs of similar size, batched together under one padding budget."""
  budget: graphs_lib.PaddingBudget  # Per device; the same on every process.
  members: np.ndarray  # This process's graphs in the bucket (local indices).
  steps: int  # Batches per epoch, the same on every process.


def bucket_keys(n_node: Sequence[int], multiple: int) -> np.ndarray:
  """Node counts rounded up to `multiple` (0: every graph in one bucket)."""
  n_node = np.asarray(n_node, np.int64)
  return -(-n_node // multiple) if multiple else np.zeros(len(n_node), int)


def size_buckets(n_node: np.ndarray, n_edge: np.ndarray, per_device: int,
                 num_devices: int, multiple: int, process: int = 0,
                 num_processes: int = 1) -> List[SizeBucket]:
  """Groups the graphs of a split into size buckets.

  `n_node`/`n_edge` hold the sizes of every file of the split (the same on
  every process); file g is graph g // P of process g % P. Buckets are node
  counts rounded up to `multiple` (0: one bucket). A bucket in which some
  process holds fewer graphs than its local batch is merged into the next
  larger one (the largest into the one before it).
  """
  local_batch = per_device * num_devices
  keys = bucket_keys(n_node, multiple)
  owner = np.arange(len(n_node)) % num_processes

  def fills(files):
    return np.bincount(owner[files], minlength=num_processes).min() >= (
        local_batch)

  groups, pending = [], np.zeros(0, int)
  for key in np.unique(keys):
    pending = np.concatenate([pending, np.flatnonzero(keys == key)])
    if fills(pending):
      groups.append(pending)
      pending = np.zeros(0, int)
  if len(pending):
    if not groups:
      raise data_lib.DataError(
          f"{len(n_node)} training graphs cannot fill a global batch of "
          f"{num_processes * local_batch} ({num_processes} processes x "
          f"{num_devices} devices x {per_device})")
    groups[-1] = np.concatenate([groups[-1], pending])
  buckets = []
  for files in groups:
    files = np.sort(files)
    counts = np.bincount(owner[files], minlength=num_processes)
    buckets.append(SizeBucket(
        budget=graphs_lib.sizes_budget(np.asarray(n_node)[files],
                                       np.asarray(n_edge)[files], per_device),
        members=files[owner[files] == process] // num_processes,
        steps=int(counts.min()) // local_batch))
  return buckets


def epoch_plan(buckets: Sequence[SizeBucket], seed: int, epoch: int,
               local_batch: int) -> List[Tuple[int, np.ndarray]]:
  """(bucket, local graph indices) of every step of `epoch` on this process.

  Each bucket's graphs are permuted by one generator seeded by (seed,
  epoch); the order in which buckets take turns is drawn from (seed, epoch,
  1), the same on every process. With one bucket on one process the graphs
  of epoch e are `default_rng([seed, e]).permutation(num_graphs)`.
  """
  rng = np.random.default_rng([seed, epoch])
  orders = [b.members[rng.permutation(len(b.members))] for b in buckets]
  turns = np.random.default_rng([seed, epoch, 1]).permutation(
      np.concatenate([np.full(b.steps, i) for i, b in enumerate(buckets)]))
  taken = [0] * len(buckets)
  plan = []
  for i in turns:
    plan.append((int(i), orders[i][taken[i]:taken[i] + local_batch]))
    taken[i] += local_batch
  return plan


def global_sizes(dataset: Dataset) -> Tuple[np.ndarray, np.ndarray]:
  """Node and edge counts of every file of the split, from all processes."""
  rows = distributed.allgather_rows(np.array(
      [[dataset.file_index(i), int(g.n_node.sum()), int(g.n_edge.sum())]
       for i, g in enumerate(dataset.graphs)], np.int64))
  rows = rows[np.argsort(rows[:, 0])]
  return rows[:, 1], rows[:, 2]


def eval_budgets(graphs: Sequence[jraph.GraphsTuple],
                  multiple: int) -> List[graphs_lib.PaddingBudget]:
  """Each graph's padding budget (one graph): that of its size bucket."""
  keys = bucket_keys([int(g.n_node.sum()) for g in graphs], multiple)
  budgets = {key: graphs_lib.padding_budget(
      [g for g, k in zip(graphs, keys) if k == key], 1) for key in set(keys)}
  return [budgets[k] for k in keys]


class TrainingData(NamedTuple):
  """Both splits of a run, with what every process agrees on."""
  train: Dataset  # This process's shard.
  test: Dataset
  buckets: List[SizeBucket]
  test_budgets: List[graphs_lib.PaddingBudget]
  scale: TargetScale
  steps_per_epoch: int
  # What the network reads, with the training descriptors' statistics.
  inputs: model_inputs.InputSpec = model_inputs.InputSpec()
  # With data.validation_files, `test` holds those training files (the run
  # evaluates and keeps its best checkpoint on them) and this the test
  # split, scored once at the end.
  final_test: Optional[Dataset] = None


def load_training_data(config: run_config.RunConfig,
                       num_devices: int) -> TrainingData:
  """Reads this process's shard of both splits of `config.data` and groups
  the training graphs into size buckets for `num_devices` local devices."""
  process, num_processes = jax.process_index(), jax.process_count()
  data = config.data
  inputs = data.input_spec()
  held_out = data.validation_files
  directory = data_directory(data)
  kwargs = dict(time_index=data.targets, inputs=inputs,
                shard=(process, num_processes))
  train_files = dict(split="train", max_files=data.max_train_files)
  train = load_dataset(directory, select=slice(0, -held_out or None),
                       with_bond_targets=config.train.bond_target_weight > 0,
                       **train_files, **kwargs)
  if train.edge_targets is not None:
    train = _bond_standardised(train)
  inputs = model_inputs.with_statistics(
      inputs, distributed.allgather_rows(model_inputs.descriptor_moments(
          train.graphs)[None]).sum(axis=0)) if inputs.descriptors else inputs
  train = _standardised(train, inputs)
  buckets = size_buckets(*global_sizes(train), config.train.graphs_per_device,
                         num_devices, data.bucket_nodes, process,
                         num_processes)
  test = _standardised(load_dataset(
      directory, "test", max_files=data.max_test_files, **kwargs), inputs)
  final_test = None
  if held_out:
    final_test = test
    test = _standardised(load_dataset(
        directory, select=slice(-held_out, None), **train_files, **kwargs),
                         inputs)
  return TrainingData(
      train=train, test=test, buckets=buckets,
      test_budgets=eval_budgets(test.graphs, data.bucket_nodes),
      scale=target_scale(train, data.standardize_targets),
      steps_per_epoch=sum(b.steps for b in buckets), inputs=inputs,
      final_test=final_test)


class TrainBatches:
  """The batch of any step, from the step number alone: per local device,
  `per_device` graphs of one size bucket, in `epoch_plan`'s order."""

  def __init__(self, data: TrainingData, seed: int, per_device: int,
               num_devices: int):
    self._data = data
    self._seed = seed
    self._per_device = per_device
    self._num_devices = num_devices
    self._plan, self._plan_epoch = [], -1

  def __call__(self, step: int) -> Batch:
    """Arrays with a leading [local devices] axis."""
    epoch, offset = divmod(step, self._data.steps_per_epoch)
    if epoch != self._plan_epoch:
      self._plan = epoch_plan(self._data.buckets, self._seed, epoch,
                              self._per_device * self._num_devices)
      self._plan_epoch = epoch
    bucket, chosen = self._plan[offset]
    size = self._per_device
    return stack_batches([
        make_batch(self._data.train, chosen[d * size:(d + 1) * size],
                   self._data.buckets[bucket].budget, self._data.scale)
        for d in range(self._num_devices)])
