"""The fast variant's structural features: values against direct numpy
computations, rotation, reflection and permutation invariance."""

import haiku as hk
import jax
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from glassy_jax.formats import data as data_lib
from glassy_jax.network import descriptors
from glassy_jax.physics import graphs as graphs_lib
from conftest import synthetic_system

CHANNELS = 3


@pytest.fixture(scope="module")
def graph():
  return graphs_lib.build_graph(data_lib.to_snapshot(synthetic_system(5), 0))


def basis_of(graph, count=8):
  types = graph.nodes[:, 0]
  return descriptors.radial_basis(graph.edges, types[graph.senders], 0.7,
                                  2.0, count)


def test_radial_basis_matches_a_direct_computation(graph):
  basis = np.asarray(basis_of(graph))
  assert basis.shape == (len(graph.edges), 16)
  distance = np.linalg.norm(graph.edges, axis=1)
  centres = np.linspace(0.7, 2.0, 8)
  width = centres[1] - centres[0]
  sender_types = graph.nodes[graph.senders, 0].astype(int)
  for edge in range(0, len(distance), 97):
    expected = np.zeros((2, 8))
    expected[sender_types[edge]] = np.exp(
        -0.5 * ((distance[edge] - centres) / width) ** 2)
    np.testing.assert_allclose(basis[edge], expected.ravel(), rtol=1e-5,
                               atol=1e-7)
  self_edges = graph.senders == graph.receivers
  assert self_edges.any() and np.abs(basis[self_edges]).max() < 1e-3


def angular(graph, edges=None, seed=0):
  edges = graph.edges if edges is None else edges
  types = graph.nodes[:, 0]

  def forward(edges):
    basis = descriptors.radial_basis(edges, types[graph.senders], 0.7, 2.0, 8)
    return descriptors.AngularInvariants(CHANNELS)(
        edges, basis, graph.receivers, len(types))

  network = hk.transform(forward)
  params = network.init(jax.random.PRNGKey(seed), edges)
  return np.asarray(network.apply(params, None, edges)), params


def test_angular_invariants_match_a_direct_computation(graph):
  features, params = angular(graph)
  n = len(graph.nodes)
  assert features.shape == (n, CHANNELS * (CHANNELS + 1))
  weights = np.asarray(basis_of(graph)) @ np.asarray(
      params["angular_invariants/radial_weights"]["w"])
  vectors = np.zeros((n, CHANNELS, 3))
  tensors = np.zeros((n, CHANNELS, 3, 3))
  for e, (r, j) in enumerate(zip(graph.edges, graph.receivers)):
    vectors[j] += weights[e, :CHANNELS, None] * r
    tensors[j] += weights[e, CHANNELS:, None, None] * np.outer(r, r)
  rows, cols = np.triu_indices(CHANNELS)
  raw = np.concatenate([
      np.einsum("nci,nki->nck", vectors, vectors)[:, rows, cols],
      np.einsum("ncij,nkij->nck", tensors, tensors)[:, rows, cols]], axis=1)
  # Layer normalisation with its initial scale 1 and offset 0.
  expected = (raw - raw.mean(1, keepdims=True)) / np.sqrt(
      raw.var(1, keepdims=True) + 1e-5)
  np.testing.assert_allclose(features, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_angular_invariants_are_rotation_and_reflection_invariant(graph, seed):
  original, _ = angular(graph)
  matrix = Rotation.random(random_state=seed).as_matrix()
  if seed:  # A reflection as well.
    matrix = matrix @ np.diag([1.0, -1.0, 1.0])
  rotated, _ = angular(graph, (graph.edges @ matrix.T).astype(np.float32))
  np.testing.assert_allclose(rotated, original, rtol=1e-3, atol=1e-3)


def test_angular_invariants_follow_a_permutation_of_particles():
  snapshot = data_lib.to_snapshot(synthetic_system(6), 0)
  graph = graphs_lib.build_graph(snapshot)
  original, _ = angular(graph)
  perm = np.random.default_rng(0).permutation(len(snapshot.types))
  permuted = graphs_lib.build_graph(snapshot._replace(
      positions=snapshot.positions[perm], types=snapshot.types[perm]))
  shuffled, _ = angular(permuted)
  np.testing.assert_allclose(shuffled, original[perm], rtol=1e-4, atol=1e-4)
