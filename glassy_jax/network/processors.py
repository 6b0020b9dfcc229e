"""The network's processor: `num_steps` GraphNetwork steps on the encoded
graph (`docs/specification.md`, "Network"), in two implementations of one
function with the same parameters.

Every step sees its input beside the encoder outputs (the skip connection):
node_in = [h_v, enc_v], edge_in = [h_e, enc_e]. DeepMind's "sequential"
order updates the edges, e' = MLP([edge_in, node_in[receiver],
node_in[sender]]), then the nodes from the updated edges, v' = MLP([sum of
received e', node_in]). The "parallel" order ("The seed's variant (TER
2023)") updates both from the step's input: e' = MLP([edge_in,
node_in[sender], node_in[receiver]]), v' = MLP([node_in, sum of received
edge_in]).

* `ReferenceProcessor`, the oracle: the sequential order is
  `jraph.GraphNetwork` with the MLPs as update functions. jraph's node
  update sees only the updated edges, so the parallel order is written out.
* `FusedProcessor`: each MLP's first layer applied by input block
  (`EdgeBlocks`, `NodeBlocks`). Node blocks act on the N node rows before
  the gather to the tens of times more edges, blocks on encoder outputs are
  applied once per graph when weights are shared, and sums use sorted
  segment sums (graphs come with receivers sorted).

Processor options trade speed and memory, never the function or the
parameters (measured in benchmarks/README.md):

* `edge_chunk_size` (fused only): each step's edge update runs over chunks
  of edges with a hand-written backward pass that keeps no [E, H]
  activations (`chunked_edges.py`); the edge encoder runs per chunk too. A
  step's input h_e is kept, or with `remat` rebuilt from every
  ceil(sqrt(num_steps))-th one.
* `remat` without edge chunks: each step in `hk.remat`, so the backward
  pass may recompute the step's edge activations instead of storing them
  (whether memory drops is up to XLA's scheduler).
"""

import functools
import math
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import haiku as hk
import jax
import jax.numpy as jnp
import jraph

from glassy_jax.network import chunked_edges
from glassy_jax.network import layers
from glassy_jax.network import model_config


class Encoded(NamedTuple):
  """The encoders' outputs, which every step sees again (the skip)."""
  nodes: jax.Array  # enc_v, [N, H].
  edges: Optional[jax.Array]  # enc_e, [E, H]; None: encoded per chunk.
  edge_inputs: jax.Array  # [E, F]: what the edge encoder encodes.


class Block(NamedTuple):
  """One step's MLPs (every step's when weights are shared)."""
  edge: layers.MLP
  node: layers.MLP


# `processor(encoded, senders, receivers) -> h_v` [N, H].
Processor = Callable[[Encoded, jax.Array, jax.Array], jax.Array]


def make_processor(config: model_config.ModelConfig, blocks: Sequence[Block],
                   encoder_edge: layers.MLP) -> Processor:
  """`config.implementation`'s processor over `blocks`, one per step."""
  if config.implementation == "fused":
    return FusedProcessor(config, blocks, encoder_edge)
  return ReferenceProcessor(config, blocks)


def _run_steps(blocks, step, h_v, state, remat: bool) -> jax.Array:
  """`h_v, state = step(block, h_v, state)` for every block, each in
  `hk.remat` when `remat`."""
  for block in blocks:
    run = functools.partial(step, block)
    h_v, state = (hk.remat(run) if remat else run)(h_v, state)
  return h_v


# ----------------------------------------------------------------- reference
class ReferenceProcessor:
  """The specification as written: concatenate, then one matrix product."""

  def __init__(self, config: model_config.ModelConfig, blocks: Sequence[Block]):
    self._config = config
    self._blocks = blocks

  def __call__(self, encoded: Encoded, senders: jax.Array,
               receivers: jax.Array) -> jax.Array:
    enc_v, enc_e = encoded.nodes, encoded.edges
    scale = self._config.aggregation_scale

    def scaled_sum(values, segment_ids, num_segments):
      return scale * layers.sum_received(values, segment_ids, num_segments,
                                         indices_are_sorted=False)

    update = (_sequential_update if self._config.update_order == "sequential"
              else _parallel_update)

    def step(block, h_v, h_e):
      graph = jraph.GraphsTuple(
          nodes=jnp.concatenate([h_v, enc_v], axis=-1),
          edges=jnp.concatenate([h_e, enc_e], axis=-1),
          senders=senders, receivers=receivers, globals=None, n_node=None,
          n_edge=None)
      graph = update(block, scaled_sum)(graph)
      return graph.nodes, graph.edges

    return _run_steps(self._blocks, step, enc_v, enc_e, self._config.remat)


GraphUpdate = Callable[[jraph.GraphsTuple], jraph.GraphsTuple]


def _sequential_update(block: Block, scaled_sum) -> GraphUpdate:
  """DeepMind's step on (node_in, edge_in): jraph's edge-then-node update.
  (jraph also sums over sent edges; unused, so XLA drops it.)"""
  return jraph.GraphNetwork(
      update_edge_fn=lambda edge_in, sent, received, _: block.edge(
          jnp.concatenate([edge_in, received, sent], axis=-1)),
      update_node_fn=lambda node_in, _, received, __: block.node(
          jnp.concatenate([received, node_in], axis=-1)),
      aggregate_edges_for_nodes_fn=scaled_sum)


def _parallel_update(block: Block, scaled_sum) -> GraphUpdate:
  """The parallel step on (node_in, edge_in): both from the step's input."""

  def update(graph):
    node_in, edge_in = graph.nodes, graph.edges
    received = scaled_sum(edge_in, graph.receivers, node_in.shape[0])
    h_e = block.edge(jnp.concatenate(
        [edge_in, node_in[graph.senders], node_in[graph.receivers]], axis=-1))
    h_v = block.node(jnp.concatenate([node_in, received], axis=-1))
    return graph._replace(nodes=h_v, edges=h_e)

  return update


# --------------------------------------------------------------------- fused
class EdgeBlocks(NamedTuple):
  """The edge MLP's first layer by the input each block acts on, [H, H]
  each (node_in = [h_v, enc_v] of the edge's receiver and sender)."""
  h_e: jax.Array
  enc_e: jax.Array
  h_receiver: jax.Array
  enc_receiver: jax.Array
  h_sender: jax.Array
  enc_sender: jax.Array
  bias: jax.Array  # [H]


# The edge MLP's input, in blocks of H columns, per update order.
_EDGE_INPUTS = {
    "sequential": ("h_e", "enc_e", "h_receiver", "enc_receiver", "h_sender",
                   "enc_sender"),
    "parallel": ("h_e", "enc_e", "h_sender", "enc_sender", "h_receiver",
                 "enc_receiver"),
}


def edge_blocks(mlp: layers.MLP, width: int, update_order: str
                ) -> EdgeBlocks:
  """Named once, so no other code depends on where a block's rows lie."""
  w, bias = mlp.layer(0, 6 * width)
  return EdgeBlocks(bias=bias, **dict(zip(_EDGE_INPUTS[update_order],
                                          jnp.split(w, 6))))


class NodeBlocks(NamedTuple):
  """The node MLP's first layer by the input each block acts on."""
  received: jax.Array  # [H, H] on sums of e', or [2H, H] of edge_in.
  node_in: jax.Array  # [2H, H] on [h_v, enc_v].
  bias: jax.Array  # [H]


def node_blocks(mlp: layers.MLP, width: int, update_order: str
                ) -> NodeBlocks:
  """Named once, so no other code depends on where a block's rows lie."""
  if update_order == "sequential":  # [received, node_in].
    w, bias = mlp.layer(0, 3 * width)
    received, node_in = jnp.split(w, [width])
  else:  # [node_in, received].
    w, bias = mlp.layer(0, 4 * width)
    node_in, received = jnp.split(w, 2)
  return NodeBlocks(received, node_in, bias)


class _EncoderTerms(NamedTuple):
  """The edge MLP's first layer on encoder outputs (bias included)."""
  edges: Optional[jax.Array]  # [E, H]; None when chunked (per chunk).
  nodes: chunked_edges.NodeProjections  # [N, H] each.


# `update(weights, state, edge_constant, projections) -> (new state, [N, H
# or 2H] sums over received edges)`; the state holds h_e.
EdgeUpdate = Callable[..., Tuple[object, jax.Array]]


class FusedProcessor:
  """The reference's function, first layers applied by input block."""

  def __init__(self, config: model_config.ModelConfig, blocks: Sequence[Block],
               encoder_edge: layers.MLP):
    self._config = config
    self._blocks = blocks
    self._encoder_edge = encoder_edge
    self._width = config.mlp_sizes[-1]  # Of h_v, enc_v, h_e and enc_e.

  def __call__(self, encoded: Encoded, senders: jax.Array,
               receivers: jax.Array) -> jax.Array:
    config = self._config
    order = config.update_order
    enc_v = encoded.nodes
    edge_update, state = (
        self._chunked_edge_update(encoded, senders, receivers)
        if config.edge_chunk_size
        else self._edge_update(encoded, senders, receivers))
    shared = (self._encoder_terms(self._blocks[0].edge, encoded)
              if config.shared_weights else None)

    def step(block, h_v, state):
      terms = shared or self._encoder_terms(block.edge, encoded)
      edge = edge_blocks(block.edge, self._width, order)
      weights = chunked_edges.EdgeWeights(edge.h_e, edge.enc_e, edge.bias,
                                          block.edge.tail_layers())
      # [N, H] each: project nodes, then gather.
      projections = chunked_edges.NodeProjections(
          receiver=h_v @ edge.h_receiver + terms.nodes.receiver,
          sender=h_v @ edge.h_sender + terms.nodes.sender)
      state, received = edge_update(weights, state, terms.edges, projections)
      received = config.aggregation_scale * received
      node = node_blocks(block.node, self._width, order)
      node_in = jnp.concatenate([h_v, enc_v], axis=-1)
      h_v = block.node.tail(
          received @ node.received + node_in @ node.node_in + node.bias)
      return h_v, state

    remat = config.remat and not config.edge_chunk_size
    return _run_steps(self._blocks, step, enc_v, state, remat)

  def _encoder_terms(self, mlp: layers.MLP, encoded: Encoded
                     ) -> _EncoderTerms:
    edge = edge_blocks(mlp, self._width, self._config.update_order)
    return _EncoderTerms(
        None if encoded.edges is None
        else encoded.edges @ edge.enc_e + edge.bias,
        chunked_edges.NodeProjections(
            receiver=encoded.nodes @ edge.enc_receiver,
            sender=encoded.nodes @ edge.enc_sender))

  def _edge_update(self, encoded: Encoded, senders, receivers
                   ) -> Tuple[EdgeUpdate, jax.Array]:
    """All edges at once; the state is h_e, enc_e at first."""
    sequential = self._config.update_order == "sequential"
    enc_e = encoded.edges
    num_nodes = encoded.nodes.shape[0]

    def update(weights, h_e, edge_constant, projections):
      new = chunked_edges.edge_mlp(
          weights, h_e, edge_constant, chunked_edges.NodeProjections(
              projections.receiver[receivers], projections.sender[senders]))
      summed = new if sequential else jnp.concatenate([h_e, enc_e], -1)
      return new, layers.sum_received(summed, receivers, num_nodes, True)

    return update, enc_e

  def _chunked_edge_update(self, encoded: Encoded, senders, receivers
                           ) -> Tuple[EdgeUpdate, tuple]:
    """Chunk by chunk, enc_e recomputed per chunk; the state is (h_e,
    `chunked_edges.History`), h_e None before the first step."""
    edges = encoded.edge_inputs
    num_nodes = encoded.nodes.shape[0]
    size = min(self._config.edge_chunk_size, max(edges.shape[0], 1))
    graph = chunked_edges.ChunkedGraph(
        edges=chunked_edges.chunk(edges, size, 0),
        senders=chunked_edges.chunk(senders, size, 0),
        receivers=chunked_edges.chunk(receivers, size, 0),
        sum_into=chunked_edges.chunk(receivers, size, num_nodes))
    encoder = ([self._encoder_edge.layer(0, edges.shape[-1])]
               + self._encoder_edge.tail_layers())
    sequential = self._config.update_order == "sequential"
    # Steps between h_e snapshots; the others are rebuilt from them.
    interval = (math.ceil(math.sqrt(len(self._blocks)))
                if self._config.remat else 1)

    def update(weights, state, edge_constant, projections):
      del edge_constant  # enc_e's block is applied per chunk.
      h_e, history = state
      new_h_e, received = chunked_edges.edge_update(
          sequential, encoder, weights, projections, h_e, history, graph)
      updates = history.updates + [(weights, projections)]
      history = (chunked_edges.History(new_h_e, [])
                 if len(updates) == interval
                 else chunked_edges.History(history.snapshot, updates))
      return (new_h_e, history), received

    return update, (None, chunked_edges.History(None, []))
