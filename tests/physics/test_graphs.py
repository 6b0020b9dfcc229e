"""Periodic graph construction against brute force and hand-built cases."""

import numpy as np
import pytest

from glassy_jax.formats import data as data_lib
from glassy_jax.physics import graphs as graphs_lib


def brute_force_edges(positions, box, cutoff):
  """O(N^2) reference: every ordered pair (i, j), i == j included."""
  edges = {}
  for i in range(len(positions)):
    for j in range(len(positions)):
      d = positions[j] - positions[i]
      d = d - box * np.round(d / box)
      if np.linalg.norm(d) < cutoff:
        edges[(i, j)] = d
  return edges


def as_dict(graph):
  return {(int(s), int(r)): e for s, r, e in
          zip(graph.senders, graph.receivers, graph.edges)}


def random_snapshot(seed, n=300, box_length=6.0, spread=1.0):
  rng = np.random.default_rng(seed)
  box = np.full(3, box_length)
  # spread > 1 puts particles outside the box: unwrapped coordinates.
  positions = rng.uniform(-spread + 1, spread, (n, 3)) * box_length
  return data_lib.Snapshot(positions, (rng.random(n) < 0.2).astype(np.int32),
                           box, None)


@pytest.mark.parametrize("spread", [1.0, 3.0])
def test_graph_matches_brute_force(spread):
  snapshot = random_snapshot(0, spread=spread)
  graph = graphs_lib.build_graph(snapshot, cutoff=2.0)
  expected = brute_force_edges(snapshot.positions, snapshot.box, 2.0)
  found = as_dict(graph)
  assert set(found) == set(expected)
  for key, vector in expected.items():
    np.testing.assert_allclose(found[key], vector, atol=1e-5)
  assert graph.n_edge[0] == len(expected)
  np.testing.assert_array_equal(graph.nodes[:, 0], snapshot.types)


def test_edges_sorted_by_receiver_and_antisymmetric():
  graph = graphs_lib.build_graph(random_snapshot(1))
  assert np.all(np.diff(graph.receivers) >= 0)
  found = as_dict(graph)
  for (i, j), vector in found.items():
    np.testing.assert_allclose(found[(j, i)], -vector, atol=1e-6)
  for i in range(int(graph.n_node[0])):
    np.testing.assert_array_equal(found[(i, i)], np.zeros(3))


def test_hand_built_periodic_system():
  """In the spirit of DeepMind's graph_model_test: clusters across faces."""
  box = np.array([10.0, 10.0, 10.0])
  positions = np.array([
      [0.5, 5.0, 5.0], [9.5, 5.0, 5.0],  # Across the x face: 1.0 apart.
      [5.0, 0.2, 9.9], [5.0, 9.9, 0.2],  # Across y and z at once.
      [5.0, 5.0, 5.0],                   # Isolated.
      [2.0, 2.0, 2.0], [3.999, 2.0, 2.0],  # Just inside the cutoff.
      [7.0, 7.0, 7.0],
  ])
  positions[7] = positions[4] + [2.0, 0, 0]  # Exactly at the cutoff: no edge.
  snapshot = data_lib.Snapshot(positions, np.zeros(8, np.int32), box, None)
  found = as_dict(graphs_lib.build_graph(snapshot))
  cross = {(0, 1), (1, 0), (2, 3), (3, 2), (5, 6), (6, 5)}
  assert set(found) == cross | {(i, i) for i in range(8)}
  np.testing.assert_allclose(found[(0, 1)], [-1.0, 0, 0], atol=1e-6)
  np.testing.assert_allclose(found[(2, 3)], [0, -0.3, 0.3], atol=1e-6)


def test_deepmind_graph_test_system():
  """DeepMind's glassy_dynamics/graph_model_test.py: 8 particles in a 4 x 10
  x 10 box at cutoff 2 (exactly half the box): its 24 expected edges."""
  positions = np.array(
      [[0.0, 0.0, 0.0], [2.5, 0.0, 0.0], [0.0, 1.5, 0.0], [0.0, 0.0, 9.0],
       [0.0, 5.0, 0.0], [0.0, 5.0, 1.0], [3.0, 5.0, 0.0], [2.0, 3.0, 3.0]])
  types = np.array([0, 0, 1, 0, 0, 1, 0, 0], np.int32)
  snapshot = data_lib.Snapshot(positions, types, np.array([4.0, 10.0, 10.0]),
                               None)
  senders = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6,
             6, 7]
  receivers = [0, 1, 2, 3, 0, 1, 3, 0, 2, 3, 0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 4,
               5, 6, 7]
  edges = [[0, 0, 0], [-1.5, 0, 0], [0, 1.5, 0], [0, 0, -1], [1.5, 0, 0],
           [0, 0, 0], [1.5, 0, -1], [0, -1.5, 0], [0, 0, 0], [0, -1.5, -1],
           [0, 0, 1], [-1.5, 0, 1], [0, 1.5, 1], [0, 0, 0], [0, 0, 0],
           [0, 0, 1], [-1, 0, 0], [0, 0, -1], [0, 0, 0], [-1, 0, -1],
           [1, 0, 0], [1, 0, 1], [0, 0, 0], [0, 0, 0]]
  found = as_dict(graphs_lib.build_graph(snapshot, cutoff=2.0))
  assert set(found) == set(zip(senders, receivers))
  for pair, edge in zip(zip(senders, receivers), edges):
    np.testing.assert_allclose(found[pair], edge, atol=1e-6)


def test_cutoff_must_fit_the_box():
  snapshot = random_snapshot(2, n=20, box_length=3.0)
  with pytest.raises(data_lib.DataError, match="at most half the smallest"):
    graphs_lib.build_graph(snapshot)


def test_padding_keeps_receivers_sorted_and_masks_padding():
  graphs = [graphs_lib.build_graph(random_snapshot(s, n=100 + 50 * s))
            for s in range(3)]
  budget = graphs_lib.padding_budget(graphs, graphs_per_batch=2)
  assert budget.n_node == 200 + 150 + 1
  targets = [np.arange(int(g.n_node[0]), dtype=np.float32) for g in graphs]
  padded, padded_targets, mask = graphs_lib.pad_batch(
      graphs[:2], targets[:2], budget)
  n_real = 100 + 150
  assert padded.nodes.shape[0] == budget.n_node
  assert padded.edges.shape[0] == budget.n_edge
  assert mask.sum() == n_real and not mask[n_real:].any()
  assert np.all(np.diff(padded.receivers) >= 0)
  real_edges = int(graphs[0].n_edge[0] + graphs[1].n_edge[0])
  assert np.all(padded.receivers[real_edges:] >= n_real)
  assert np.all(padded.senders[real_edges:] >= n_real)
  np.testing.assert_array_equal(padded_targets[100:n_real], targets[1])
  with pytest.raises(data_lib.DataError, match="padding budget"):
    graphs_lib.pad_batch(graphs, targets, budget)
