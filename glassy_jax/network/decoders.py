"""Decode: the network's outputs from its final node features.

Each decoder is a plain object that makes its Haiku modules in the scope of
the network that builds it, so their parameters keep the network's names
(`bapst/~/decoder`, `bapst/~/descriptor_readout`, `bapst/~/bond_decoder`)
and checkpoints are unchanged by where the code lives. Decoders run in
float32: they see N (or E) rows only, and the output needs more than
bfloat16's 3 digits.
"""

import haiku as hk
import jax
import jax.numpy as jnp
import jraph

from glassy_jax.network import layers
from glassy_jax.network import model_config


class NodeDecoder:
  """Propensities per node: the decoder MLP on the final node features
  ([N] or [N, K]), plus a linear map of the input descriptors when
  `descriptor_readout` is set (a readout the ridge fit can start)."""

  def __init__(self, config: model_config.ModelConfig):
    self._mlp = layers.MLP(config.decoder_sizes, False, jnp.float32,
                           name="decoder")
    self._readout = (hk.Linear(config.decoder_sizes[-1],
                               name="descriptor_readout")
                     if config.descriptor_readout else None)

  def __call__(self, h_v: jax.Array, graph: jraph.GraphsTuple) -> jax.Array:
    outputs = self._mlp(h_v.astype(jnp.float32))
    if self._readout:
      outputs += self._readout(graph.nodes[:, 1:])
    return layers.node_outputs(outputs)


class BondDecoder:
  """BOTAN's bond target per edge, [n_edge] (`bond_head`): an auxiliary
  output for training, never a prediction. Symmetric in the pair: it reads
  the sum and the absolute difference of the two particles' features."""

  def __init__(self, config: model_config.ModelConfig):
    self._mlp = layers.MLP(tuple(config.decoder_sizes[:-1]) + (1,), False,
                           jnp.float32, name="bond_decoder")

  def __call__(self, h_v: jax.Array, graph: jraph.GraphsTuple) -> jax.Array:
    h_v = h_v.astype(jnp.float32)
    h_s, h_r = h_v[graph.senders], h_v[graph.receivers]
    pair = jnp.concatenate([h_s + h_r, jnp.abs(h_s - h_r)], axis=-1)
    return self._mlp(pair)[:, 0]
