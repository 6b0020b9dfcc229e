"""Structural input features for the fast variant of the network
(`configs/fast.py`), computed inside the model from the raw edge vectors.

DeepMind's network sees each edge only as a raw vector r_j - r_i and must
learn from it, with ReLU units, both the sharp type-resolved distances of the
first shell and any angular (many-neighbour) structure, which is slow. These
features hand both over in a form the network can use at once (how fast each
makes it learn: BUILD_NOTES.md, "Learning speed"):

* `radial_basis`: Gaussians of |r| on evenly spaced centres, one block per
  sender type, appended to the edge vector as edge features.
* `AngularInvariants`: C learned radial functions per sender type weight the
  edge vectors; the sums over a node's edges are vectors (l = 1) and
  symmetric tensors (l = 2). The net force on a particle and its local
  stiffness (Hessian) block have exactly these forms, and they set its
  short-time displacement. Their Gram matrices over channels are invariant
  under rotations, reflections and particle permutations, and join the
  particle type as node features.

Both see the augmented edge vectors, so training-time augmentation still
applies, and both are zero on self-edges and padding edges (|r| = 0 lies far
below the first centre, and r = 0 adds no vector).
"""

from typing import Tuple

import haiku as hk
import jax
import jax.numpy as jnp
import jraph
import numpy as np

from glassy_jax.network import model_config

# Upper-triangle layout of a symmetric 3x3 tensor; off-diagonal entries count
# twice in the Frobenius product, hence the sqrt(2) weights.
_SYMMETRIC_ROWS = np.array([0, 1, 2, 0, 0, 1])
_SYMMETRIC_COLS = np.array([0, 1, 2, 1, 2, 2])
_SYMMETRIC_WEIGHTS = np.array([1.0, 1.0, 1.0] + [np.sqrt(2.0)] * 3,
                              np.float32)


def radial_basis(vectors: jax.Array, sender_types: jax.Array,
                 minimum: float, maximum: float, count: int) -> jax.Array:
  """[E, 3] edge vectors -> [E, 2 * count]: Gaussians of |r| of width equal
  to the centre spacing, the block of the sender's type (0 = A, 1 = B) set
  and the other zero."""
  if count < 2 or not maximum > minimum:
    raise ValueError("the radial basis needs count >= 2 and maximum > minimum, "
                     f"got count={count}, minimum={minimum}, maximum={maximum}")
  distance = jnp.sqrt(jnp.sum(vectors * vectors, axis=-1))
  centres = jnp.linspace(minimum, maximum, count, dtype=vectors.dtype)
  width = (maximum - minimum) / (count - 1)
  gaussians = jnp.exp(-0.5 * ((distance[:, None] - centres) / width) ** 2)
  by_type = jax.nn.one_hot(sender_types.astype(jnp.int32), 2,
                           dtype=vectors.dtype)
  return (by_type[:, :, None] * gaussians[:, None, :]).reshape(
      vectors.shape[0], 2 * count)


def _gram_upper(features: jax.Array) -> jax.Array:
  """[N, C, D] -> [N, C (C + 1) / 2]: the channels' pairwise dot products."""
  gram = jnp.einsum("ncd,nkd->nck", features, features)
  rows, cols = np.triu_indices(features.shape[1])
  return gram[:, rows, cols]


class AngularInvariants(hk.Module):
  """Rotation-invariant node features from learned sums of edge vectors and
  of their outer products (module doc)."""

  def __init__(self, channels: int, name: str = "angular_invariants"):
    super().__init__(name=name)
    self._channels = channels

  def __call__(self, vectors: jax.Array, basis: jax.Array,
               receivers: jax.Array, num_nodes: int) -> jax.Array:
    """vectors [E, 3], basis [E, B] (`radial_basis`), receivers [E]
    -> [N, C (C + 1)] layer-normalised invariants."""
    weights = hk.Linear(2 * self._channels, with_bias=False,
                        name="radial_weights")(basis)
    vector_weights, tensor_weights = jnp.split(weights, 2, axis=-1)
    outer = (vectors[:, _SYMMETRIC_ROWS] * vectors[:, _SYMMETRIC_COLS]
             * _SYMMETRIC_WEIGHTS)  # [E, 6]: r r^T, Frobenius-preserving.
    summed = jax.ops.segment_sum(
        jnp.concatenate([vector_weights[:, :, None] * vectors[:, None, :],
                         tensor_weights[:, :, None] * outer[:, None, :]],
                        axis=-1).reshape(vectors.shape[0], -1),
        receivers, num_nodes)
    summed = summed.reshape(num_nodes, self._channels, 9)
    invariants = jnp.concatenate([_gram_upper(summed[..., :3]),
                                  _gram_upper(summed[..., 3:])], axis=-1)
    return hk.LayerNorm(-1, create_scale=True, create_offset=True,
                        name="layer_norm")(invariants)


class EncoderInputs:
  """What the encoders read, [N, node features] and [E, edge features]: the
  particle type (one-hot or scalar) and any structural descriptor columns
  per node, the edge vector per edge, and the fast variant's radial and
  angular features above. A plain object, so the `AngularInvariants` it
  makes keeps the network's parameter names."""

  def __init__(self, config: model_config.ModelConfig):
    self._config = config
    self._angular = (AngularInvariants(config.angular_channels)
                     if config.angular_channels else None)

  def __call__(self, graph: jraph.GraphsTuple
               ) -> Tuple[jax.Array, jax.Array]:
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
      basis = radial_basis(edges, types[graph.senders], config.radial_min,
                           config.radial_max, config.radial_count)
      if self._angular:
        nodes = jnp.concatenate([nodes, self._angular(
            edges, basis, graph.receivers, nodes.shape[0])], axis=-1)
      if rbf_edges:
        edges = jnp.concatenate([edges, basis], axis=-1)
    return nodes, edges
