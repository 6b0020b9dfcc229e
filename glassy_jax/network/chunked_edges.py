"""The fused processor's edge update over chunks of edges, in bounded memory.

For large systems (`model.edge_chunk_size`), one message-passing step's edge
update runs over chunks of edges in a loop, and so does its hand-written
backward pass (a `jax.custom_vjp`), which keeps no [E, H] activations:
enc_e and the encoder terms are recomputed per chunk, and a step's input h_e
is either kept (a snapshot) or rebuilt per chunk by re-running the edge
updates since the last snapshot (`History`). Forward and backward
temporaries are then a few [E, H] arrays plus [N, H] ones, whatever XLA's
scheduler does; benchmarks/README.md has the measured memory and time.

The function is the fused processor's (`processors.py`), with the same
parameters; tests/network/test_models.py checks values and gradients against it.
"""

import functools
from typing import List, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp

from glassy_jax.network import layers


class EdgeWeights(NamedTuple):
  """The processor's edge MLP with its first layer split by input block
  (the node blocks are applied before gathering: `NodeProjections`)."""
  w_h_e: jax.Array  # [H, H]: acts on the edge state h_e.
  w_enc_e: jax.Array  # [H, H]: acts on the encoded edge enc_e.
  bias: jax.Array  # [H]
  tail: List[layers.Layer]  # Layers 1.. of the MLP.


class NodeProjections(NamedTuple):
  """The edge MLP's first layer on node features, [N, H] each (or gathered,
  [edges, H]): the blocks of each edge's receiver and sender."""
  receiver: jax.Array
  sender: jax.Array


class ChunkedGraph(NamedTuple):
  """Edges as [chunks, chunk size, ...]; padding edges gather node 0 and
  are summed into no node (`sum_into` = N)."""
  edges: jax.Array  # [chunks, size, F] edge features.
  senders: jax.Array  # [chunks, size], padded with 0 (gathered).
  receivers: jax.Array  # [chunks, size], padded with 0 (gathered).
  sum_into: jax.Array  # [chunks, size]: the receivers, padded with N.


class History(NamedTuple):
  """What rebuilds a step's input h_e chunk by chunk: a snapshot and the
  edge updates of the steps since."""
  snapshot: Optional[jax.Array]  # [chunks, size, H]; None: before step 1.
  updates: List[Tuple[EdgeWeights, NodeProjections]]


def chunk(values: jax.Array, size: int, fill: int) -> jax.Array:
  """[E, ...] -> [ceil(E / size), size, ...], padded with `fill`."""
  pad = -values.shape[0] % size
  values = jnp.pad(values, [(0, pad)] + [(0, 0)] * (values.ndim - 1),
                   constant_values=fill)
  return values.reshape(-1, size, *values.shape[1:])


def edge_mlp(weights: EdgeWeights, h_e: jax.Array, edge_const: jax.Array,
             gathered: NodeProjections) -> jax.Array:
  """The processor's edge MLP on [h_e, enc_e, and node_in of the edge's
  receiver and sender]: `edge_const` holds the enc_e block and the bias,
  `gathered` the node blocks of each edge's endpoints."""
  return layers.mlp_tail(h_e @ weights.w_h_e + edge_const + gathered.receiver
                         + gathered.sender, weights.tail)


def _chunk_step(sequential: bool, encoder: Sequence[layers.Layer],
                weights: EdgeWeights, h_e: Optional[jax.Array],
                gathered: NodeProjections, edges: jax.Array):
  """One step's edge update on one chunk: (new h_e, what the node update
  sums over received edges). h_e None: the first step (h_e = enc_e)."""
  (w_0, b_0), *encoder_tail = encoder
  enc_e = layers.mlp_tail(edges @ w_0 + b_0, encoder_tail)
  h_e = enc_e if h_e is None else h_e
  new = edge_mlp(weights, h_e, enc_e @ weights.w_enc_e + weights.bias,
                 gathered)
  return new, (new if sequential
               else jnp.concatenate([h_e, enc_e], axis=-1))


def _gather(projections: NodeProjections, receivers, senders
            ) -> NodeProjections:
  return NodeProjections(projections.receiver[receivers],
                         projections.sender[senders])


def _rebuild_chunk(history: History, index, encoder, edges, receivers,
                   senders):
  """A step's input h_e on chunk `index` (forward only)."""
  h_e = None if history.snapshot is None else history.snapshot[index]
  for weights, projections in history.updates:  # (Sums are not needed.)
    h_e, _ = _chunk_step(True, encoder, weights, h_e,
                         _gather(projections, receivers, senders), edges)
  return h_e


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def edge_update(sequential: bool, encoder: Sequence[layers.Layer],
                weights: EdgeWeights, projections: NodeProjections,
                h_e: Optional[jax.Array], history: History,
                graph: ChunkedGraph) -> Tuple[jax.Array, jax.Array]:
  """One step's edge update over all chunks: ([chunks, size, H] new h_e,
  [N, H or 2H] sums over received edges).

  `history` rebuilds h_e in the backward pass, which keeps it instead of
  h_e. Both passes work chunk by chunk, in place: no [E, ...] buffer but h_e
  (or its cotangent), its replacement and the snapshots.
  """
  num_nodes, width = projections.receiver.shape

  def body(index, carry):
    out, total = carry
    new, summed = _chunk_step(
        sequential, encoder, weights, None if h_e is None else out[index],
        _gather(projections, graph.receivers[index], graph.senders[index]),
        graph.edges[index])
    total = total.at[graph.sum_into[index]].add(
        summed.astype(jnp.float32), mode="drop", indices_are_sorted=True)
    return out.at[index].set(new), total

  out = (jnp.zeros(graph.senders.shape + (width,), projections.sender.dtype)
         if h_e is None else h_e)  # Overwritten chunk by chunk.
  total = jnp.zeros((num_nodes, width if sequential else 2 * width),
                    jnp.float32)
  out, total = jax.lax.fori_loop(0, graph.edges.shape[0], body, (out, total))
  return out, total.astype(projections.sender.dtype)


class _Residuals(NamedTuple):
  encoder: Sequence[layers.Layer]
  weights: EdgeWeights
  projections: NodeProjections
  history: History
  graph: ChunkedGraph


def _edge_update_fwd(sequential, *args):
  args = jax.custom_derivatives.custom_vjp_primal_tree_values(args)
  encoder, weights, projections, _, history, graph = args
  return (edge_update(sequential, *args),
          _Residuals(encoder, weights, projections, history, graph))


def _edge_update_bwd(sequential, residuals: _Residuals, cotangents):
  encoder, weights, projections, history, graph = residuals
  d_out, d_total = cotangents
  if isinstance(d_total, jax.custom_derivatives.SymbolicZero):
    d_total = jnp.zeros(d_total.shape, d_total.dtype)
  # The last step's new h_e is unused (a symbolic zero cotangent): read
  # zeros instead, and make the buffer for h_e's cotangent from data, as
  # XLA:CPU allocates constants such as jnp.zeros at the program's start and
  # would hold [E, H] through the forward pass. Chunks are written before
  # they are read.
  out_unused = isinstance(d_out, jax.custom_derivatives.SymbolicZero)
  if out_unused:
    d_out = jnp.broadcast_to(d_total[0, 0], d_out.shape)

  def body(index, carry):
    d_h_e, d_encoder, d_weights, d_receiver, d_sender = carry
    receivers, senders = graph.receivers[index], graph.senders[index]
    edges = graph.edges[index]
    h_e = _rebuild_chunk(history, index, encoder, edges, receivers, senders)
    step = functools.partial(_chunk_step, sequential, edges=edges)
    (new, _), vjp = jax.vjp(step, encoder, weights, h_e,
                            _gather(projections, receivers, senders))
    d_new = jnp.zeros_like(new) if out_unused else d_h_e[index]
    d_summed = d_total.at[graph.sum_into[index]].get(mode="fill",
                                                     fill_value=0)
    grads = vjp((d_new, d_summed))
    d_encoder, d_weights = jax.tree.map(jnp.add, (d_encoder, d_weights),
                                        grads[:2])
    if h_e is not None:  # Same layout: h_e's cotangent replaces new's.
      d_h_e = d_h_e.at[index].set(grads[2])
    d_gathered = grads[3]
    return (d_h_e, d_encoder, d_weights,
            d_receiver.at[receivers].add(
                d_gathered.receiver.astype(jnp.float32)),
            d_sender.at[senders].add(d_gathered.sender.astype(jnp.float32)))

  zeros = functools.partial(jnp.zeros, dtype=jnp.float32)
  d_h_e, d_encoder, d_weights, d_receiver, d_sender = jax.lax.fori_loop(
      0, graph.edges.shape[0], body,
      (d_out, jax.tree.map(jnp.zeros_like, encoder),
       jax.tree.map(jnp.zeros_like, weights),
       zeros(projections.receiver.shape), zeros(projections.sender.shape)))
  d_projections = NodeProjections(
      d_receiver.astype(projections.receiver.dtype),
      d_sender.astype(projections.sender.dtype))
  first_step = history.snapshot is None and not history.updates
  return (d_encoder, d_weights, d_projections,
          None if first_step else d_h_e, None, None)


edge_update.defvjp(_edge_update_fwd, _edge_update_bwd, symbolic_zeros=True)
