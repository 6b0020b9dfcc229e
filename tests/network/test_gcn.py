"""The GCN baseline: shapes, what it can see, and that it trains."""

import jax
import numpy as np

from glassy_jax.configs import gcn as gcn_config
from glassy_jax.formats import data
from glassy_jax.network import models
from glassy_jax.physics import graphs
from conftest import synthetic_system


def _graph(seed=0):
  return graphs.build_graph(data.to_snapshot(synthetic_system(seed), 0))


def test_shapes_and_parameters():
  config = gcn_config.get_config().model
  network = models.make_network(config)
  graph = _graph()
  params = network.init(jax.random.PRNGKey(0), graph)
  assert sorted(params) == ["gcn/convolution_0", "gcn/convolution_1",
                            "gcn/convolution_2", "gcn/decoder/~/linear_0",
                            "gcn/decoder/~/linear_1",
                            "gcn/decoder/~/linear_2"]
  assert params["gcn/convolution_0"]["w"].shape == (2, 64)
  assert network.apply(params, None, graph).shape == graph.nodes.shape[:1]


def test_equals_a_dense_normalised_adjacency_product():
  """H' = relu(D^-1/2 A D^-1/2 H W) with A the (self-edged) adjacency,
  computed densely with numpy: one convolution, identity decoder input."""
  config = gcn_config.get_config().model
  config.num_steps = 1
  network = models.make_network(config)
  graph = _graph(1)
  params = network.init(jax.random.PRNGKey(1), graph)
  n = graph.nodes.shape[0]
  adjacency = np.zeros((n, n))
  np.add.at(adjacency, (graph.receivers, graph.senders), 1.0)
  degree = adjacency.sum(1)
  normalised = adjacency / np.sqrt(np.outer(degree, degree))
  one_hot = np.eye(2)[np.asarray(graph.nodes[:, 0], int)]
  hidden = np.maximum(normalised @ one_hot @ np.asarray(
      params["gcn/convolution_0"]["w"], np.float64), 0)
  for layer in range(3):
    w = np.asarray(params[f"gcn/decoder/~/linear_{layer}"]["w"], np.float64)
    b = np.asarray(params[f"gcn/decoder/~/linear_{layer}"]["b"], np.float64)
    hidden = hidden @ w + b
    if layer < 2:
      hidden = np.maximum(hidden, 0)
  with jax.default_matmul_precision("highest"):
    predicted = np.asarray(network.apply(params, None, graph))
  np.testing.assert_allclose(predicted, hidden[:, 0], rtol=1e-4, atol=1e-5)


def test_blind_to_distances_within_the_cutoff():
  """Node features only: moving particles without changing who neighbours
  whom leaves the predictions unchanged (what a Bapst network would see)."""
  config = gcn_config.get_config().model
  network = models.make_network(config)
  graph = _graph(2)
  params = network.init(jax.random.PRNGKey(2), graph)
  moved = graph._replace(edges=graph.edges * 0.9)
  np.testing.assert_array_equal(network.apply(params, None, graph),
                                network.apply(params, None, moved))
