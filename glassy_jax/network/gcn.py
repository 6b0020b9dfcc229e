"""A graph convolutional network (Kipf & Welling, 2017): a learned baseline.

The seed report's GCN baseline: node features only (the particle type, one
hot), no edge features, so it sees the structure only through who lies
within the cutoff of whom. Each layer is H' = relu(D^-1/2 (A + I) D^-1/2 H W)
over the graph's edges (which include every self-edge, so A + I is the edge
set), then the network's decoder MLP. It trains with the same loop and
checkpoints as the Bapst network (`configs/gcn.py`,
`model.architecture = "gcn"`): what the message-passing network buys over
connectivity alone.
"""

import haiku as hk
import jax
import jax.numpy as jnp
import jraph

from glassy_jax.network import layers
from glassy_jax.network import model_config


class GraphConvolutionalNetwork(hk.Module):
  """`model.num_steps` convolutions of width `model.mlp_sizes[-1]`."""

  def __init__(self, config: model_config.ModelConfig, name: str = "gcn"):
    super().__init__(name=name)
    self._config = config

  def __call__(self, graph: jraph.GraphsTuple) -> jax.Array:
    config = self._config
    num_nodes = graph.nodes.shape[0]
    hidden = jax.nn.one_hot(graph.nodes[:, 0].astype(jnp.int32), 2)
    degree = jax.ops.segment_sum(jnp.ones(graph.receivers.shape),
                                 graph.receivers, num_nodes)
    scale = jax.lax.rsqrt(jnp.maximum(degree, 1.0))
    weights = (scale[graph.senders] * scale[graph.receivers])[:, None]
    for step in range(config.num_steps):
      projected = hk.Linear(config.mlp_sizes[-1], with_bias=False,
                            w_init=layers.WEIGHT_INIT,
                            name=f"convolution_{step}")(hidden)
      hidden = jax.nn.relu(jax.ops.segment_sum(
          projected[graph.senders] * weights, graph.receivers, num_nodes))
    decoder = layers.MLP(config.decoder_sizes, False, jnp.float32,
                         name="decoder")
    return layers.node_outputs(decoder(hidden))
