"""Snapshots -> padded `jraph.GraphsTuple`s (numpy, built once on the host).

The graph is DeepMind's: one node per particle with its type as a single float,
an edge for every ordered pair (i, j) closer than the cutoff *including i == j*,
sender i, receiver j, edge feature the minimum-image vector r_j - r_i.
Neighbours come from a periodic KD-tree (O(N log N), memory O(E)); edges are
sorted by receiver so the model can use sorted segment sums.
"""

import math
from typing import NamedTuple, Sequence, Tuple

import jraph
import numpy as np
from scipy import spatial

from glassy_jax.formats import data as data_lib

DEFAULT_CUTOFF = 2.0  # DeepMind's, in units of sigma_AA.
# Edge budgets are rounded up to multiples of this, so that graphs whose
# edge counts differ a little share one compiled shape.
EDGE_MULTIPLE = 1024


def minimum_image(displacement: np.ndarray, box: np.ndarray) -> np.ndarray:
  """Nearest periodic image of displacements; right for unwrapped inputs too."""
  return displacement - box * np.round(displacement / box)


def neighbour_pairs(positions: np.ndarray, box: np.ndarray,
                    cutoff: float = DEFAULT_CUTOFF
                    ) -> Tuple[np.ndarray, np.ndarray]:
  """All ordered pairs (i, j), i == j included, with |r_j - r_i|_min < cutoff.

  Returned sorted by receiver j, then sender i.
  """
  box = np.asarray(box, np.float64)
  # Pairs closer than half the box have one nearest image: the strict edge
  # test below makes a cutoff of exactly half the box unambiguous.
  if cutoff > box.min() / 2:
    raise data_lib.DataError(
        f"cutoff {cutoff} must be at most half the smallest box length "
        f"({box.min() / 2:g}) for the minimum-image convention")
  wrapped = np.mod(positions, box)
  wrapped[wrapped >= box] = 0.0  # np.mod can round up to exactly `box`.
  tree = spatial.cKDTree(wrapped, boxsize=box)
  pairs = tree.query_pairs(cutoff, output_type="ndarray")
  n = len(positions)
  senders = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(n)])
  receivers = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(n)])
  # query_pairs includes distance == cutoff; the definition is strict.
  vectors = minimum_image(positions[receivers] - positions[senders], box)
  keep = np.einsum("ij,ij->i", vectors, vectors) < cutoff**2
  senders, receivers = senders[keep], receivers[keep]
  order = np.lexsort((senders, receivers))
  return senders[order], receivers[order]


def build_graph(snapshot: data_lib.Snapshot,
                cutoff: float = DEFAULT_CUTOFF) -> jraph.GraphsTuple:
  """One unpadded graph; node features [N, 1] = type, edges [E, 3]."""
  senders, receivers = neighbour_pairs(snapshot.positions, snapshot.box, cutoff)
  vectors = minimum_image(
      snapshot.positions[receivers] - snapshot.positions[senders], snapshot.box)
  n = len(snapshot.types)
  return jraph.GraphsTuple(
      nodes=snapshot.types.astype(np.float32)[:, None],
      edges=vectors.astype(np.float32),
      senders=senders.astype(np.int32),
      receivers=receivers.astype(np.int32),
      n_node=np.array([n], np.int32),
      n_edge=np.array([len(senders)], np.int32),
      globals=np.zeros((1, 1), np.float32))


class PaddingBudget(NamedTuple):
  """Fixed sizes every padded batch is brought to: one compiled shape."""
  n_node: int
  n_edge: int
  n_graph: int


def round_edges(n_edge: float) -> int:
  """`n_edge` rounded up to a multiple of `EDGE_MULTIPLE`."""
  return EDGE_MULTIPLE * math.ceil(n_edge / EDGE_MULTIPLE)


def sizes_budget(n_node: Sequence[int], n_edge: Sequence[int],
                 graphs_per_batch: int) -> PaddingBudget:
  """Room for the `graphs_per_batch` largest of graphs of these node and
  edge counts plus one padding graph: sizes alone suffice (multi-host runs
  budget for other processes' graphs)."""
  nodes = sorted((int(n) for n in n_node), reverse=True)
  edges = sorted((int(e) for e in n_edge), reverse=True)
  return PaddingBudget(
      n_node=sum(nodes[:graphs_per_batch]) + 1,
      n_edge=round_edges(sum(edges[:graphs_per_batch]) + 1),
      n_graph=graphs_per_batch + 1)


def padding_budget(graphs: Sequence[jraph.GraphsTuple],
                   graphs_per_batch: int) -> PaddingBudget:
  """Room for the `graphs_per_batch` largest graphs plus one padding graph."""
  return sizes_budget([g.n_node.sum() for g in graphs],
                      [g.n_edge.sum() for g in graphs], graphs_per_batch)


def pad_batch(graphs: Sequence[jraph.GraphsTuple], targets: Sequence[np.ndarray],
              budget: PaddingBudget
              ) -> Tuple[jraph.GraphsTuple, np.ndarray, np.ndarray]:
  """Batches and pads graphs; returns (graph, targets [n_node] or [n_node,
  K] like the graphs', node mask).

  Padding edges point at the first padding node, after every real receiver,
  so receivers stay sorted; the mask is False on padding nodes.
  """
  batched = jraph.batch_np(list(graphs))
  n_real = int(batched.n_node.sum())
  if n_real >= budget.n_node or int(batched.n_edge.sum()) > budget.n_edge:
    raise data_lib.DataError(
        f"batch with {n_real} nodes / {int(batched.n_edge.sum())} edges does "
        f"not fit the padding budget {budget}")
  padded = jraph.pad_with_graphs(batched, budget.n_node, budget.n_edge,
                                 budget.n_graph)
  padded_targets = np.zeros((budget.n_node,) + np.shape(targets[0])[1:],
                            np.float32)
  padded_targets[:n_real] = np.concatenate(targets)
  mask = np.zeros(budget.n_node, bool)
  mask[:n_real] = True
  return padded, padded_targets, mask


def pad_edge_values(values: Sequence[np.ndarray], n_edge: int) -> np.ndarray:
  """Per-edge values of a batch's graphs, in `pad_batch`'s edge order
  (graphs in turn, padding edges last with zeros), [n_edge] float32."""
  padded = np.zeros(n_edge, np.float32)
  joined = np.concatenate(values)
  padded[:len(joined)] = joined
  return padded
