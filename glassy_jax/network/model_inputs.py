"""What the network sees of a snapshot: the graph of its thermal or of its
inherent structure, with structural descriptors as node inputs if asked.

DeepMind's network reads the thermal configuration and the particle types
only (`InputSpec()`). Two named departures serve the slow dynamics
(`configs/long_time.py`, BUILD_NOTES.md "Slow dynamics"):

* `inherent_structures`: edges (and descriptors) from the configuration
  quenched to its energy minimum (`glassy_jax.physics.inherent_structures`);
* `descriptors="coarse"`: the coarse-grained radial and energy descriptors
  of `glassy_jax.physics.structure_features` as extra node columns after the type,
  standardised with the training split's statistics, which checkpoints
  store so that `apply` and `evaluate` standardise new snapshots alike;
  `"coarse_relaxation"` adds each particle's relaxation distance (thermal
  to inherent structure), coarse-grained over the same lengths.

Training, `apply`, `evaluate` and the plots build graphs through
`build_graph`, so a checkpoint is always fed what it was trained on, from
plain thermal snapshots. Minima and descriptors are cached by content
(`inherent_structures.default_cache_directory()`).
"""

import dataclasses
import hashlib
from typing import Sequence, Tuple

import jraph
import numpy as np

from glassy_jax.formats import data as data_lib
from glassy_jax.physics import graphs
from glassy_jax.physics import inherent_structures
from glassy_jax.physics import structure_features

# "coarse": of the structure the graph is built from; "coarse_both": of the
# thermal and of the inherent structure side by side (short times live in
# the thermal structure, long ones in the inherent one);
# "coarse_relaxation": of the inherent structure, then the coarse-grained
# relaxation distance.
DESCRIPTORS = ("", "coarse", "coarse_both", "coarse_relaxation",
               "coarse_both_relaxation")
# The long-time recipe's coarse-graining lengths (sigma_AA), chosen on a
# validation split of Shiba et al.'s training files (BUILD_NOTES.md).
LONG_TIME_SCALES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """How a snapshot becomes the network's input graph."""
  cutoff: float = graphs.DEFAULT_CUTOFF
  inherent_structures: bool = False
  descriptors: str = ""  # One of DESCRIPTORS; "" = the type alone.
  coarse_scales: Tuple[float, ...] = LONG_TIME_SCALES
  # Training statistics of the descriptor columns (empty until known).
  descriptor_mean: Tuple[float, ...] = ()
  descriptor_std: Tuple[float, ...] = ()

  def __post_init__(self):
    for key in ("coarse_scales", "descriptor_mean", "descriptor_std"):
      object.__setattr__(self, key, tuple(float(v) for v in getattr(self,
                                                                    key)))
    if self.descriptors not in DESCRIPTORS:
      raise ValueError(f"data.descriptors must be one of {DESCRIPTORS}, got "
                       f"{self.descriptors!r}")
    if not self.cutoff > 0:
      raise ValueError(f"data.cutoff must be > 0, got {self.cutoff}")
    if self.descriptors and not self.coarse_scales:
      raise ValueError("data.coarse_scales must hold at least one length")
    if any(not s > 0 for s in self.coarse_scales):
      raise ValueError("data.coarse_scales must be positive lengths, got "
                       f"{self.coarse_scales}")
    if len(self.descriptor_mean) != len(self.descriptor_std):
      raise ValueError("descriptor_mean and descriptor_std differ in length")

  @property
  def num_descriptors(self) -> int:
    """Node input columns after the type."""
    if not self.descriptors:
      return 0
    coarse = structure_features.coarse_descriptor_count(self.coarse_scales)
    relaxation = 1 + len(self.coarse_scales)
    return {"coarse_both": 2 * coarse,
            "coarse_relaxation": coarse + relaxation,
            "coarse_both_relaxation": 2 * coarse + relaxation
            }.get(self.descriptors, coarse)


def structure(snapshot: data_lib.Snapshot,
              spec: InputSpec) -> data_lib.Snapshot:
  """The snapshot whose positions the graph is built from."""
  if spec.inherent_structures:
    return inherent_structures.inherent_snapshot(snapshot)
  return snapshot


def descriptors(snapshot: data_lib.Snapshot, spec: InputSpec) -> np.ndarray:
  """[N, D] coarse descriptors of the structure `spec` reads (thermal or
  inherent), of both ("coarse_both"), of the inherent structure and its
  relaxation distance ("coarse_relaxation"), or of all three
  ("coarse_both_relaxation": thermal, inherent, relaxation), cached by
  content."""
  if spec.descriptors == "coarse":
    return _coarse(structure(snapshot, spec), spec.coarse_scales)
  inherent = inherent_structures.inherent_snapshot(snapshot)
  blocks = []
  if spec.descriptors in ("coarse_both", "coarse_both_relaxation"):
    blocks.append(_coarse(snapshot, spec.coarse_scales))
  blocks.append(_coarse(inherent, spec.coarse_scales))
  if spec.descriptors in ("coarse_relaxation", "coarse_both_relaxation"):
    blocks.append(_coarse_relaxation(snapshot, inherent, spec.coarse_scales))
  return np.concatenate(blocks, axis=1)


def _coarse(snapshot: data_lib.Snapshot,
            scales: Tuple[float, ...]) -> np.ndarray:
  """`structure_features.coarse_descriptors` of these positions, cached."""
  parameters = (structure_features.RADIAL_MIN, structure_features.RADIAL_MAX,
                structure_features.RADIAL_BINS, scales)
  return inherent_structures.cached(
      inherent_structures.cache_path("descriptors", snapshot, parameters),
      (len(snapshot.types), structure_features.coarse_descriptor_count(
          scales)),
      lambda: structure_features.coarse_descriptors(
          snapshot, scales).astype(np.float32))


def _coarse_relaxation(snapshot: data_lib.Snapshot,
                       inherent: data_lib.Snapshot,
                       scales: Tuple[float, ...]) -> np.ndarray:
  """[N, 1 + len(scales)] the relaxation distance, coarse-grained over the
  inherent structure, cached."""
  # Keyed by both structures: the minimum may come from the file.
  minimum = hashlib.sha256(np.ascontiguousarray(
      inherent.positions, np.float64).tobytes()).hexdigest()
  return inherent_structures.cached(
      inherent_structures.cache_path("relaxation", snapshot,
                                     (minimum, scales)),
      (len(snapshot.types), 1 + len(scales)),
      lambda: structure_features.coarse_grain(
          structure_features.relaxation_distance(snapshot, inherent)[:, None],
          inherent.positions, inherent.box, scales).astype(np.float32))


def raw_graph(snapshot: data_lib.Snapshot,
              spec: InputSpec) -> jraph.GraphsTuple:
  """The graph with unstandardised descriptor columns (nodes [N, 1 + D])."""
  graph = graphs.build_graph(structure(snapshot, spec), spec.cutoff)
  if not spec.descriptors:
    return graph
  return graph._replace(nodes=np.concatenate(
      [graph.nodes, descriptors(snapshot, spec)], axis=1))


def standardise(graph: jraph.GraphsTuple,
                spec: InputSpec) -> jraph.GraphsTuple:
  """Descriptor columns as (x - mean) / std with the spec's statistics."""
  if not spec.descriptors:
    return graph
  if len(spec.descriptor_mean) != spec.num_descriptors:
    raise ValueError(f"the input spec has {len(spec.descriptor_mean)} "
                     f"descriptor statistics for {spec.num_descriptors} "
                     "descriptors")
  mean = np.asarray(spec.descriptor_mean, np.float32)
  std = np.asarray(spec.descriptor_std, np.float32)
  return graph._replace(nodes=np.concatenate(
      [graph.nodes[:, :1], (graph.nodes[:, 1:] - mean) / std], axis=1))


def descriptor_moments(graphs_: Sequence[jraph.GraphsTuple]) -> np.ndarray:
  """[3, D] count, sum and sum of squares of the descriptor columns: what
  processes add up to agree on the statistics."""
  rows = np.concatenate([g.nodes[:, 1:] for g in graphs_]).astype(np.float64)
  return np.stack([np.full(rows.shape[1], len(rows), np.float64),
                   rows.sum(axis=0), (rows * rows).sum(axis=0)])


def with_statistics(spec: InputSpec, moments: np.ndarray) -> InputSpec:
  """`spec` with the descriptors' mean and std from `descriptor_moments`
  (summed over processes); constant columns get std 1."""
  if not spec.descriptors:
    return spec
  count, total, squares = moments
  mean = total / count
  std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
  std[std < 1e-6 * np.maximum(np.abs(mean), 1.0)] = 1.0
  return dataclasses.replace(spec, descriptor_mean=tuple(mean),
                             descriptor_std=tuple(std))


def build_graph(snapshot: data_lib.Snapshot,
                spec: InputSpec) -> jraph.GraphsTuple:
  """The network's input graph of a snapshot (standardised descriptors)."""
  return standardise(raw_graph(snapshot, spec), spec)
