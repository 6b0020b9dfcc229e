"""The Bapst et al. (2020) graph network in Haiku: embed -> process -> decode.

`docs/specification.md` ("Network") is the specification;
`model_config.ModelConfig` names every option that departs from it.

* Embed: a node and an edge encoder MLP on the input features (the particle
  type and the edge vector; the fast variant's radial and angular features,
  `descriptors.py`; structural descriptors as extra node columns).
* Process: one GraphNetwork block per message-passing step (the same one
  when weights are shared), each step seeing its input beside the encoder
  outputs (`processors.py`: a reference and a fused implementation of that
  function, with the same parameters).
* Decode (`decoders.py`): propensities from the final node features
  (`NodeDecoder`, with the descriptor readout); with `bond_head`, also each
  edge's bond target from its two particles (`BondDecoder`, BOTAN's
  auxiliary target, `glassy_jax.physics.bond_targets`).

`compute_dtype` "bfloat16" runs the encoders and the processor in bfloat16
(weights cast on use; parameters, message sums, the decoder and the loss
stay float32): activations in half the bytes, for hardware with bfloat16
matrix units (GPU, TPU); its time, memory and accuracy on a CPU without them
are in benchmarks/README.md ("What helped and what did not"). It and the
processor's `edge_chunk_size` and `remat` trade speed, memory and precision,
never the architecture or the parameters.
"""

import functools
from typing import Dict, Sequence, Tuple, Union

import haiku as hk
import jax
import jax.numpy as jnp
import jraph
import ml_collections
import numpy as np

from glassy_jax.network import decoders
from glassy_jax.network import descriptors
from glassy_jax.network import gcn
from glassy_jax.network import layers
from glassy_jax.network import model_config
from glassy_jax.network import processors


class BapstNetwork(hk.Module):
  """Predicts the propensity per node of a `GraphsTuple`: [n_node], or
  [n_node, K] when the decoder has K > 1 outputs (one per time index of a
  joint multi-time model)."""

  def __init__(self, config: model_config.ModelConfig, name: str = "bapst"):
    super().__init__(name=name)
    self._config = config
    self._inputs = descriptors.EncoderInputs(config)
    self._dtype = jnp.dtype(config.compute_dtype)
    mlp = functools.partial(layers.MLP, config.mlp_sizes, True,
                            dtype=self._dtype)
    self._encoder_node = mlp(name="encoder_node")
    self._encoder_edge = mlp(name="encoder_edge")

    def block(suffix):
      return processors.Block(mlp(name=f"processor_edge{suffix}"),
                              mlp(name=f"processor_node{suffix}"))

    blocks = ([block("")] * config.num_steps if config.shared_weights
              else [block(f"_{step}") for step in range(config.num_steps)])
    self._processor = processors.make_processor(config, blocks,
                                                self._encoder_edge)
    self._decoder = decoders.NodeDecoder(config)
    self._bond_decoder = (decoders.BondDecoder(config) if config.bond_head
                          else None)

  def __call__(self, graph: jraph.GraphsTuple) -> jax.Array:
    return self._decoder(self._node_features(graph), graph)

  def with_bonds(self, graph: jraph.GraphsTuple
                 ) -> Tuple[jax.Array, jax.Array]:
    """The node outputs and [n_edge] bond outputs (`bond_head`): the same
    final node features decoded per node and per pair."""
    h_v = self._node_features(graph)
    return self._decoder(h_v, graph), self._bond_decoder(h_v, graph)

  def _node_features(self, graph: jraph.GraphsTuple) -> jax.Array:
    """Embed and process: the final node features [N, latent]."""
    nodes, edges = self._inputs(graph)
    nodes, edges = nodes.astype(self._dtype), edges.astype(self._dtype)
    # Embed. With edge chunks, the processor encodes edges chunk by chunk.
    encoded = processors.Encoded(
        nodes=self._encoder_node(nodes),
        edges=(None if self._config.edge_chunk_size
               else self._encoder_edge(edges)),
        edge_inputs=edges)
    return self._processor(encoded, graph.senders, graph.receivers)


def make_network(config: Union[model_config.ModelConfig,
                               ml_collections.ConfigDict]
                 ) -> hk.Transformed:
  """`init(rng, graph)` / `apply(params, None, graph) -> [n_node]` (or
  [n_node, K], `BapstNetwork`; with `bonds=True` also the [n_edge] bond
  outputs of `bond_head`): the Bapst network, or the GCN baseline when
  `architecture` is "gcn".

  `config`: typed, or a training config's `model` (validated here).
  """
  config = model_config.ModelConfig.of(config)
  network = (gcn.GraphConvolutionalNetwork if config.architecture == "gcn"
             else BapstNetwork)

  def forward(graph: jraph.GraphsTuple, bonds: bool = False):
    """`bonds`: (node outputs, bond outputs). The bond head's parameters are
    made at every init, so that any init gives a model's full parameters."""
    net = network(config)
    if config.bond_head and (bonds or hk.running_init()):
      outputs, bond_outputs = net.with_bonds(graph)
      return (outputs, bond_outputs) if bonds else outputs
    return net(graph)

  return hk.transform(forward)


def make_predictor(network: hk.Transformed,
                   target_mean: Union[float, Sequence[float]] = 0.0,
                   target_std: Union[float, Sequence[float]] = 1.0):
  """The one inference path: jitted `predict(params, graph) -> [n_node]` (or
  [n_node, K]) in target units: standardised training targets undone, per
  time index when `target_mean` / `target_std` hold one value per output.

  Training-time evaluation, `apply`, `evaluate` and the plots all use it, so
  their metrics agree on every backend: matrix products run in full float32
  (GPUs would otherwise use TF32, whose error exceeds the tolerance of the
  published checkpoint's import: `docs/specification.md`, "The reference
  glass").
  """

  # float32, as a Python float would be cast.
  mean = np.asarray(target_mean, np.float32)
  std = np.asarray(target_std, np.float32)

  @jax.jit
  def predict(params: hk.Params, graph: jraph.GraphsTuple) -> jax.Array:
    with jax.default_matmul_precision("highest"):
      return network.apply(params, None, graph) * std + mean

  return predict


def param_shapes(config: Union[model_config.ModelConfig,
                               ml_collections.ConfigDict]
                 ) -> Dict[str, Dict[str, Tuple[int, ...]]]:
  """Haiku parameter shapes of a network, found without computing anything:
  what a checkpoint must hold to fit `config`."""
  one = np.zeros(1, np.int32)
  columns = 1 + model_config.ModelConfig.of(config).node_descriptors
  graph = jraph.GraphsTuple(
      nodes=np.zeros((1, columns), np.float32),
      edges=np.zeros((1, 3), np.float32), senders=one, receivers=one,
      n_node=np.ones(1, np.int32), n_edge=np.ones(1, np.int32),
      globals=np.zeros((1, 1), np.float32))
  shapes = jax.eval_shape(make_network(config).init, jax.random.PRNGKey(0),
                          graph)
  return {module: {name: tuple(leaf.shape) for name, leaf in leaves.items()}
          for module, leaves in shapes.items()}
