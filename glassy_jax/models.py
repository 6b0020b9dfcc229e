"""The Bapst et al. (2020) graph network in Haiku.

Encoder (node and edge MLPs) -> ONE GraphNetwork block applied `num_steps`
times with shared weights, each step seeing [current, encoded] features
(skip connection), edge update first, then node update from the updated edges
-> node decoder. `../shared/FIDELITY.md` is the specification; `configs/` name
every option that departs from it.

Two implementations compute the same function with the same parameters:

* `reference`: a direct transcription of the specification (concatenate, then
  one matrix product); the correctness oracle.
* `fused`: the first layer of each processor MLP is split into blocks by
  input. Blocks acting on node features are applied to the N node rows before
  gathering to the E ~ 40 N edges, and blocks acting on encoder outputs are
  computed once per graph instead of once per step. Receivers are sorted, so
  aggregation uses sorted segment sums.

Options that trade speed, memory and (bfloat16) precision, never the
architecture or the parameters (`configs/bapst.py` gives the defaults):

* `remat` (False): wrap each message-passing step in `hk.remat`, so the
  backward pass may recompute the step's edge activations instead of storing
  them; costs about one more forward. On XLA:CPU (jax 0.10) it saves no
  memory: the compiled temporary size is unchanged (benchmarks/README.md).
* `compute_dtype` ("float32"): "bfloat16" runs the encoders and the
  processor in bfloat16 (weights cast on use; parameters, message sums, the
  decoder and the loss stay float32). Halves activation memory and helps
  where bfloat16 matrix units exist (GPU, TPU); slower on CPUs without them.
"""

import functools
from typing import Sequence, Tuple

import haiku as hk
import jax
import jax.numpy as jnp
import jraph
import ml_collections

# TensorFlow 1 defaults that DeepMind's Sonnet 1 model was initialised with.
WEIGHT_INIT = hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
BIAS_INIT = hk.initializers.VarianceScaling(0.1, "fan_in", "truncated_normal")

UPDATE_ORDERS = ("sequential", "parallel")
NODE_FEATURES = ("type", "one_hot")
IMPLEMENTATIONS = ("reference", "fused")
COMPUTE_DTYPES = ("float32", "bfloat16")


class _LinearParams(hk.Module):
  """The `w` [in, out] and `b` [out] of one linear layer, made on first use
  (float32) and returned in the compute dtype."""

  def __init__(self, out_size: int, dtype: jnp.dtype, name: str):
    super().__init__(name=name)
    self._out_size = out_size
    self._dtype = dtype

  def __call__(self, in_size: int) -> Tuple[jax.Array, jax.Array]:
    w = hk.get_parameter("w", [in_size, self._out_size], init=WEIGHT_INIT)
    b = hk.get_parameter("b", [self._out_size], init=BIAS_INIT)
    return w.astype(self._dtype), b.astype(self._dtype)


class MLP(hk.Module):
  """Linear-ReLU stack whose layers can also be read one by one, so the first
  layer can be applied by blocks of its input."""

  def __init__(self, output_sizes: Sequence[int], activate_final: bool,
               dtype: jnp.dtype, name: str):
    super().__init__(name=name)
    self._layers = [_LinearParams(size, dtype, name=f"linear_{index}")
                    for index, size in enumerate(output_sizes)]
    self._activate_final = activate_final

  def layer(self, index: int, in_size: int) -> Tuple[jax.Array, jax.Array]:
    """Weights and bias of layer `index`."""
    return self._layers[index](in_size)

  def tail(self, hidden: jax.Array) -> jax.Array:
    """Layers 1.. applied to the (pre-activation) output of layer 0."""
    last = len(self._layers) - 1
    for index in range(len(self._layers)):
      if index:
        w, b = self.layer(index, hidden.shape[-1])
        hidden = hidden @ w + b
      if index < last or self._activate_final:
        hidden = jax.nn.relu(hidden)
    return hidden

  def __call__(self, inputs: jax.Array) -> jax.Array:
    w, b = self.layer(0, inputs.shape[-1])
    return self.tail(inputs @ w + b)


def _sum_received(values: jax.Array, receivers: jax.Array, num_nodes: int,
                  indices_are_sorted: bool) -> jax.Array:
  """Sum over received edges, accumulated in float32 whatever the dtype."""
  return jax.ops.segment_sum(
      values.astype(jnp.float32), receivers, num_nodes,
      indices_are_sorted=indices_are_sorted).astype(values.dtype)


class BapstNetwork(hk.Module):
  """Predicts one scalar (the propensity) per node of a `GraphsTuple`."""

  def __init__(self, config: ml_collections.ConfigDict, name: str = "bapst"):
    super().__init__(name=name)
    if config.update_order not in UPDATE_ORDERS:
      raise ValueError(f"model.update_order must be one of {UPDATE_ORDERS}, "
                       f"got {config.update_order!r}")
    if config.node_features not in NODE_FEATURES:
      raise ValueError(f"model.node_features must be one of {NODE_FEATURES}, "
                       f"got {config.node_features!r}")
    if config.implementation not in IMPLEMENTATIONS:
      raise ValueError(f"model.implementation must be one of "
                       f"{IMPLEMENTATIONS}, got {config.implementation!r}")
    # Configs and checkpoints written before these options default to off.
    compute_dtype = config.get("compute_dtype", "float32")
    if compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f"model.compute_dtype must be one of {COMPUTE_DTYPES}, "
                       f"got {compute_dtype!r}")
    self._config = config
    self._dtype = jnp.dtype(compute_dtype)
    self._remat = bool(config.get("remat", False))
    sizes = config.mlp_sizes
    mlp = functools.partial(MLP, dtype=self._dtype)
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
    self._decoder = MLP(config.decoder_sizes, False, jnp.float32,
                        name="decoder")

  def __call__(self, graph: jraph.GraphsTuple) -> jax.Array:
    config = self._config
    types = graph.nodes.reshape(-1)
    if config.node_features == "one_hot":
      nodes = jax.nn.one_hot(types.astype(jnp.int32), 2)
    else:
      nodes = types[:, None]
    enc_v = self._encoder_node(nodes.astype(self._dtype))
    enc_e = self._encoder_edge(graph.edges.astype(self._dtype))
    process = (self._process_fused if config.implementation == "fused"
               else self._process_reference)
    h_v = process(enc_v, enc_e, graph.senders, graph.receivers)
    return self._decoder(h_v.astype(jnp.float32))[..., 0]

  def _step_fn(self, step):
    """`step`, recomputed in the backward pass when `remat` is set."""
    return hk.remat(step) if self._remat else step

  # ------------------------------------------------------------- reference
  def _process_reference(self, enc_v, enc_e, senders, receivers):
    """FIDELITY.md, line by line."""
    num_nodes = enc_v.shape[0]
    sum_received = functools.partial(_sum_received, receivers=receivers,
                                     num_nodes=num_nodes,
                                     indices_are_sorted=False)

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

    h_v, h_e = enc_v, enc_e
    for edge_mlp, node_mlp in self._processor:
      h_v, h_e = self._step_fn(functools.partial(step, edge_mlp, node_mlp))(
          h_v, h_e)
    return h_v

  # ----------------------------------------------------------------- fused
  def _process_fused(self, enc_v, enc_e, senders, receivers):
    """Same function; first layers split by input block (see module doc)."""
    sequential = self._config.update_order == "sequential"
    width = self._config.mlp_sizes[-1]  # Of h_v, enc_v, h_e and enc_e alike.
    num_nodes = enc_v.shape[0]
    # The edge MLP's input is [h_e, enc_e, node_in[a], node_in[b]] with
    # node_in = [h_v, enc_v] and (a, b) = (receiver, sender) when sequential,
    # (sender, receiver) when parallel.
    first, second = ((receivers, senders) if sequential
                     else (senders, receivers))
    sum_received = functools.partial(_sum_received, receivers=receivers,
                                     num_nodes=num_nodes,
                                     indices_are_sorted=True)

    def step(edge_mlp, node_mlp, h_v, h_e, edge_const, enc_a, enc_b):
      w_e, _ = edge_mlp.layer(0, 6 * width)
      w_he, _, w_ha, _, w_hb, _ = jnp.split(w_e, 6)
      proj_a = h_v @ w_ha + enc_a  # [N, H]: project nodes, then gather.
      proj_b = h_v @ w_hb + enc_b
      edge_pre = h_e @ w_he + edge_const + proj_a[first] + proj_b[second]
      node_in = jnp.concatenate([h_v, enc_v], axis=-1)
      if sequential:
        h_e = edge_mlp.tail(edge_pre)
        received = sum_received(h_e)
        w_v, b_v = node_mlp.layer(0, 3 * width)
        h_v = node_mlp.tail(
            received @ w_v[:width] + node_in @ w_v[width:] + b_v)
      else:
        received = sum_received(jnp.concatenate([h_e, enc_e], axis=-1))
        h_e = edge_mlp.tail(edge_pre)
        w_v, b_v = node_mlp.layer(0, 4 * width)
        h_v = node_mlp.tail(
            node_in @ w_v[:2 * width] + received @ w_v[2 * width:] + b_v)
      return h_v, h_e

    h_v, h_e = enc_v, enc_e
    hoisted = None
    for edge_mlp, node_mlp in self._processor:
      if hoisted is None or not self._config.shared_weights:
        # Encoder terms: once per graph when the block's weights are shared.
        w_e, b_e = edge_mlp.layer(0, 6 * width)
        _, w_ence, _, w_enca, _, w_encb = jnp.split(w_e, 6)
        hoisted = (enc_e @ w_ence + b_e, enc_v @ w_enca, enc_v @ w_encb)
      h_v, h_e = self._step_fn(functools.partial(step, edge_mlp, node_mlp))(
          h_v, h_e, *hoisted)
    return h_v


def bapst_config() -> ml_collections.ConfigDict:
  """The network of `../shared/FIDELITY.md` (and of DeepMind's checkpoints).

  Lives in the package, not only in `configs/bapst.py`, so that installed
  copies can rebuild the published network without the `configs/` folder.
  """
  return ml_collections.ConfigDict({
      "mlp_sizes": (64, 64),
      "decoder_sizes": (64, 64, 1),
      "num_steps": 7,
      "shared_weights": True,
      "update_order": "sequential",  # DeepMind; or "parallel".
      "node_features": "type",  # One float; or "one_hot".
      "implementation": "fused",  # Same function as "reference".
      # Recompute each step in the backward pass (for large systems; saved
      # no memory on XLA:CPU, see BUILD_NOTES.md).
      "remat": False,
      "compute_dtype": "float32",  # Or "bfloat16" (f32 params and loss).
  })


def make_network(config: ml_collections.ConfigDict) -> hk.Transformed:
  """`init(rng, graph)` / `apply(params, None, graph) -> [n_node]`."""

  def forward(graph: jraph.GraphsTuple) -> jax.Array:
    return BapstNetwork(config)(graph)

  return hk.transform(forward)

