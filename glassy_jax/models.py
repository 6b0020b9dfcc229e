"""The Bapst et al. (2020) graph network in Haiku.

Encoder (node and edge MLPs) -> ONE GraphNetwork block applied `num_steps`
times with shared weights, each step seeing [current, encoded] features
(skip connection), edge update first, then node update from the updated edges
-> node decoder. `../shared/FIDELITY.md` is the specification;
`model_config.ModelConfig` names every option that departs from it.

Two implementations compute the same function with the same parameters:

* `reference`: a direct transcription of the specification (concatenate, then
  one matrix product); the correctness oracle.
* `fused`: the first layer of each processor MLP is split into blocks by
  input. Blocks acting on node features are applied to the N node rows before
  gathering to the E ~ 40 N edges, and blocks acting on encoder outputs are
  computed once per graph instead of once per step. Receivers are sorted, so
  aggregation uses sorted segment sums.

Options that trade speed, memory and (bfloat16) precision, never the
architecture or the parameters (measured in benchmarks/README.md):

* `edge_chunk_size` (0 = off; fused only): each step's edge update runs over
  chunks of edges with a hand-written backward pass that keeps no [E, H]
  activations (`chunked_edges.py`). A step's input h_e is kept, or with
  `remat` rebuilt from every ceil(sqrt(num_steps))-th one.
* `remat` (False): without edge chunks, wrap each message-passing step in
  `hk.remat`, so the backward pass may recompute the step's edge activations
  instead of storing them; costs about one more forward. Whether memory
  drops is up to XLA's scheduler (on CPU, only with the memory-optimised
  one).
* `compute_dtype` ("float32"): "bfloat16" runs the encoders and the
  processor in bfloat16 (weights cast on use; parameters, message sums, the
  decoder and the loss stay float32). Halves activation memory and helps
  where bfloat16 matrix units exist (GPU, TPU); slower on CPUs without them.
"""

import functools
import math
from typing import Sequence, Union

import haiku as hk
import jax
import jax.numpy as jnp
import jraph
import ml_collections
import numpy as np

from glassy_jax import chunked_edges
from glassy_jax import descriptors
from glassy_jax import gcn
from glassy_jax import layers
from glassy_jax.model_config import ModelConfig


class BapstNetwork(hk.Module):
  """Predicts the propensity per node of a `GraphsTuple`: [n_node], or
  [n_node, K] when the decoder has K > 1 outputs (one per time index of a
  joint multi-time model)."""

  def __init__(self, config: ModelConfig, name: str = "bapst"):
    super().__init__(name=name)
    self._config = config
    self._angular = (descriptors.AngularInvariants(config.angular_channels)
                     if config.angular_channels else None)
    self._dtype = jnp.dtype(config.compute_dtype)
    mlp = functools.partial(layers.MLP, dtype=self._dtype)
    sizes = config.mlp_sizes
    self._encoder_node = mlp(sizes, True, name="encoder_node")
    self._encoder_edge = mlp(sizes, True, name="encoder_edge")
    # One (edge, node) MLP pair per step: the same pair when shared.
    def block(suffix):
      return (mlp(sizes, True, name=f"processor_edge{suffix}"),
              mlp(sizes, True, name=f"processor_node{suffix}"))
    self._processor = ([block("")] * config.num_steps if config.shared_weights
                       else [block(f"_{step}")
                             for step in range(config.num_steps)])
    # N rows only, and the output needs more than bfloat16's 3 digits.
    self._decoder = layers.MLP(config.decoder_sizes, False, jnp.float32,
                               name="decoder")
    self._readout = (hk.Linear(config.decoder_sizes[-1],
                               name="descriptor_readout")
                     if config.descriptor_readout else None)

  def __call__(self, graph: jraph.GraphsTuple) -> jax.Array:
    config = self._config
    if graph.nodes.shape[-1] != 1 + config.node_descriptors:
      raise ValueError(
          f"the network reads 1 + {config.node_descriptors} node columns "
          f"(type, descriptors), the graph has {graph.nodes.shape[-1]}")
    types = graph.nodes[:, 0]
    if config.node_features == "one_hot":
      nodes = jax.nn.one_hot(types.astype(jnp.int32), 2)
    else:
      nodes = types[:, None]
    if config.node_descriptors:
      nodes = jnp.concatenate([nodes, graph.nodes[:, 1:]], axis=-1)
    edges = graph.edges
    rbf_edges = config.edge_features == "vector_rbf"
    if self._angular or rbf_edges:
      basis = descriptors.radial_basis(
          edges, types[graph.senders], config.radial_min, config.radial_max,
          config.radial_count)
      if self._angular:
        nodes = jnp.concatenate([nodes, self._angular(
            edges, basis, graph.receivers, nodes.shape[0])], axis=-1)
      if rbf_edges:
        edges = jnp.concatenate([edges, basis], axis=-1)
    enc_v = self._encoder_node(nodes.astype(self._dtype))
    process = (self._process_fused if config.implementation == "fused"
               else self._process_reference)
    h_v = process(enc_v, edges.astype(self._dtype), graph.senders,
                  graph.receivers)
    outputs = self._decoder(h_v.astype(jnp.float32))
    if self._readout:
      outputs += self._readout(graph.nodes[:, 1:])
    return layers.node_outputs(outputs)

  def _run_steps(self, step, h_v, h_e):
    """`h_v, h_e = step(edge_mlp, node_mlp, h_v, h_e)` for every block, each
    step in `hk.remat` with `remat` and unchunked edges (chunked edges
    recompute their own way)."""
    remat = self._config.remat and not self._config.edge_chunk_size
    for edge_mlp, node_mlp in self._processor:
      run = functools.partial(step, edge_mlp, node_mlp)
      h_v, h_e = (hk.remat(run) if remat else run)(h_v, h_e)
    return h_v

  # ------------------------------------------------------------- reference
  def _process_reference(self, enc_v, edges, senders, receivers):
    """FIDELITY.md, line by line."""
    enc_e = self._encoder_edge(edges)
    num_nodes = enc_v.shape[0]
    def sum_received(values):
      return self._config.aggregation_scale * layers.sum_received(
          values, receivers, num_nodes, indices_are_sorted=False)

    def step(edge_mlp, node_mlp, h_v, h_e):
      node_in = jnp.concatenate([h_v, enc_v], axis=-1)
      edge_in = jnp.concatenate([h_e, enc_e], axis=-1)
      if self._config.update_order == "sequential":
        h_e = edge_mlp(jnp.concatenate(
            [edge_in, node_in[receivers], node_in[senders]], axis=-1))
        received = sum_received(h_e)
        h_v = node_mlp(jnp.concatenate([received, node_in], axis=-1))
      else:
        received = sum_received(edge_in)
        h_e = edge_mlp(jnp.concatenate(
            [edge_in, node_in[senders], node_in[receivers]], axis=-1))
        h_v = node_mlp(jnp.concatenate([node_in, received], axis=-1))
      return h_v, h_e

    return self._run_steps(step, enc_v, enc_e)

  # ----------------------------------------------------------------- fused
  def _process_fused(self, enc_v, edges, senders, receivers):
    """Same function; first layers split by input block (see module doc).

    The edge MLP's input is [h_e, enc_e, node_in[a], node_in[b]] with
    node_in = [h_v, enc_v] and (a, b) = (receiver, sender) when sequential,
    (sender, receiver) when parallel.
    """
    sequential = self._config.update_order == "sequential"
    width = self._config.mlp_sizes[-1]  # Of h_v, enc_v, h_e and enc_e alike.
    first, second = ((receivers, senders) if sequential
                     else (senders, receivers))
    enc_e, state, edge_update = self._edge_updater(
        edges, first, second, receivers, enc_v.shape[0])

    def encoder_terms(edge_mlp):
      """The edge MLP's first layer on encoder outputs (enc_e's block is
      per chunk when chunked)."""
      w_e, b_e = edge_mlp.layer(0, 6 * width)
      _, w_ence, _, w_enca, _, w_encb = jnp.split(w_e, 6)
      edge_const = None if enc_e is None else enc_e @ w_ence + b_e
      return edge_const, enc_v @ w_enca, enc_v @ w_encb

    # Encoder terms: once per graph when the blocks' weights are shared.
    shared = (encoder_terms(self._processor[0][0])
              if self._config.shared_weights else None)

    def step(edge_mlp, node_mlp, h_v, state):
      edge_const, enc_a, enc_b = shared or encoder_terms(edge_mlp)
      w_e, b_e = edge_mlp.layer(0, 6 * width)
      w_he, w_ence, w_ha, _, w_hb, _ = jnp.split(w_e, 6)
      weights = chunked_edges.EdgeWeights(w_he, w_ence, b_e,
                                          edge_mlp.tail_layers())
      # [N, H] each: project nodes, then gather.
      projections = chunked_edges.NodeProjections(h_v @ w_ha + enc_a,
                                                  h_v @ w_hb + enc_b)
      state, received = edge_update(weights, state, edge_const, projections)
      received = self._config.aggregation_scale * received
      node_in = jnp.concatenate([h_v, enc_v], axis=-1)
      if sequential:
        w_v, b_v = node_mlp.layer(0, 3 * width)
        h_v = node_mlp.tail(
            received @ w_v[:width] + node_in @ w_v[width:] + b_v)
      else:
        w_v, b_v = node_mlp.layer(0, 4 * width)
        h_v = node_mlp.tail(
            node_in @ w_v[:2 * width] + received @ w_v[2 * width:] + b_v)
      return h_v, state

    return self._run_steps(step, enc_v, state)

  def _edge_updater(self, edges, first, second, receivers, num_nodes):
    """(enc_e or None when chunked, the initial edge state, and
    `update(weights, state, edge_const, projections) -> (new state, sums
    over received edges)`)."""
    sequential = self._config.update_order == "sequential"
    chunk = min(self._config.edge_chunk_size, max(edges.shape[0], 1))
    if not chunk:
      enc_e = self._encoder_edge(edges)

      def update(weights, h_e, edge_const, projections):
        new = chunked_edges.edge_mlp(
            weights, h_e, edge_const, chunked_edges.NodeProjections(
                projections.first[first], projections.second[second]))
        summed = new if sequential else jnp.concatenate([h_e, enc_e], -1)
        return new, layers.sum_received(summed, receivers, num_nodes, True)

      return enc_e, enc_e, update  # The edge state: h_e.

    graph = chunked_edges.ChunkedGraph(
        chunked_edges.chunk(edges, chunk, 0),
        chunked_edges.chunk(first, chunk, 0),
        chunked_edges.chunk(second, chunk, 0),
        chunked_edges.chunk(receivers, chunk, num_nodes))
    encoder = ([self._encoder_edge.layer(0, edges.shape[-1])]
               + self._encoder_edge.tail_layers())
    # Steps between h_e snapshots; the others are rebuilt from them.
    interval = (math.ceil(math.sqrt(len(self._processor)))
                if self._config.remat else 1)

    def update(weights, state, edge_const, projections):
      del edge_const  # enc_e's block is applied per chunk.
      h_e, history = state
      new_h_e, received = chunked_edges.edge_update(
          sequential, encoder, weights, projections, h_e, history, graph)
      updates = history.updates + [(weights, projections)]
      history = (chunked_edges.History(new_h_e, [])
                 if len(updates) == interval
                 else chunked_edges.History(history.snapshot, updates))
      return (new_h_e, history), received

    # The edge state: (h_e, history), h_e None before the first step (enc_e,
    # computed per chunk).
    return None, (None, chunked_edges.History(None, [])), update


def make_network(config: Union[ModelConfig, ml_collections.ConfigDict]
                 ) -> hk.Transformed:
  """`init(rng, graph)` / `apply(params, None, graph) -> [n_node]` (or
  [n_node, K], `BapstNetwork`): the Bapst network, or the GCN baseline
  when `architecture` is "gcn".

  `config`: typed, or a training config's `model` (validated here).
  """
  config = ModelConfig.of(config)
  network = (gcn.GraphConvolutionalNetwork if config.architecture == "gcn"
             else BapstNetwork)

  def forward(graph: jraph.GraphsTuple) -> jax.Array:
    return network(config)(graph)

  return hk.transform(forward)


def make_predictor(network: hk.Transformed,
                   target_mean: Union[float, Sequence[float]] = 0.0,
                   target_std: Union[float, Sequence[float]] = 1.0):
  """The one inference path: jitted `predict(params, graph) -> [n_node]` (or
  [n_node, K]) in target units: standardised training targets undone, per
  time index when `target_mean` / `target_std` hold one value per output.

  Training-time evaluation, `apply`, `evaluate` and the plots all use it, so
  their metrics agree on every backend: matrix products run in full float32
  (GPUs would otherwise use TF32 and drift ~1e-3 from the published
  predictions).
  """

  # float32, as a Python float would be cast.
  mean = np.asarray(target_mean, np.float32)
  std = np.asarray(target_std, np.float32)

  @jax.jit
  def predict(params: hk.Params, graph: jraph.GraphsTuple) -> jax.Array:
    with jax.default_matmul_precision("highest"):
      return network.apply(params, None, graph) * std + mean

  return predict
