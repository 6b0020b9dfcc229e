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

* `edge_chunk_size` (0 = off; fused only): for large systems. Each step's
  edge update runs over chunks of this many edges in a loop, and so does its
  hand-written backward pass (`_chunked_edge_update`), which keeps no
  [E, 64] activations: enc_e and the encoder terms are recomputed per chunk,
  and a step's input h_e is either kept (a snapshot) or rebuilt per chunk by
  re-running the edge updates since the last snapshot. Without `remat` every
  step's h_e is a snapshot; with it, every ceil(sqrt(num_steps))-th (7
  steps: 2 snapshots, 6 edge updates re-run). With `remat` and 4096-edge
  chunks, forward+backward temporary memory is about 3 [E, 64] arrays plus
  the [N, 64] ones, whatever XLA's scheduler does: 0.22 instead of 2.0 GB at
  4096 particles, 13.5 instead of 130 GB at 262,144; the step takes ~1.8x as
  long (benchmarks/README.md).
* `remat` (False): without edge chunks, wrap each message-passing step in
  `hk.remat`, so the backward pass may recompute the step's edge activations
  instead of storing them; costs about one more forward. On XLA:CPU (jax
  0.10) it saves no memory: the default, concurrency-optimised scheduler
  runs every recomputation early (with
  `XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false`: 2.0
  -> 1.55 GB at 4096 particles). With edge chunks: fewer h_e snapshots.
* `compute_dtype` ("float32"): "bfloat16" runs the encoders and the
  processor in bfloat16 (weights cast on use; parameters, message sums, the
  decoder and the loss stay float32). Halves activation memory and helps
  where bfloat16 matrix units exist (GPU, TPU); slower on CPUs without them.
"""

import functools
import math
from typing import List, Sequence, Tuple

import haiku as hk
import jax
import jax.numpy as jnp
import jraph
import ml_collections

from glassy_jax import descriptors

# TensorFlow 1 defaults that DeepMind's Sonnet 1 model was initialised with.
WEIGHT_INIT = hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
BIAS_INIT = hk.initializers.VarianceScaling(0.1, "fan_in", "truncated_normal")

UPDATE_ORDERS = ("sequential", "parallel")
NODE_FEATURES = ("type", "one_hot")
IMPLEMENTATIONS = ("reference", "fused")
COMPUTE_DTYPES = ("float32", "bfloat16")
EDGE_FEATURES = ("vector", "vector_rbf")


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


def _mlp_tail(hidden: jax.Array, layers, activate_final: bool = True
              ) -> jax.Array:
  """Layers 1.. of an MLP, [(w, b), ...], on the pre-activation of layer 0."""
  for w, b in layers:
    hidden = jax.nn.relu(hidden) @ w + b
  return jax.nn.relu(hidden) if activate_final else hidden


class MLP(hk.Module):
  """Linear-ReLU stack whose layers can also be read one by one, so the first
  layer can be applied by blocks of its input."""

  def __init__(self, output_sizes: Sequence[int], activate_final: bool,
               dtype: jnp.dtype, name: str):
    super().__init__(name=name)
    self._sizes = tuple(output_sizes)
    self._layers = [_LinearParams(size, dtype, name=f"linear_{index}")
                    for index, size in enumerate(output_sizes)]
    self._activate_final = activate_final

  def layer(self, index: int, in_size: int) -> Tuple[jax.Array, jax.Array]:
    """Weights and bias of layer `index`."""
    return self._layers[index](in_size)

  def tail_layers(self) -> List[Tuple[jax.Array, jax.Array]]:
    """[(w, b)] of layers 1.., for `_mlp_tail`."""
    return [self.layer(index, self._sizes[index - 1])
            for index in range(1, len(self._layers))]

  def tail(self, hidden: jax.Array) -> jax.Array:
    """Layers 1.. applied to the (pre-activation) output of layer 0."""
    return _mlp_tail(hidden, self.tail_layers(), self._activate_final)

  def __call__(self, inputs: jax.Array) -> jax.Array:
    w, b = self.layer(0, inputs.shape[-1])
    return self.tail(inputs @ w + b)


def _sum_received(values: jax.Array, receivers: jax.Array, num_nodes: int,
                  indices_are_sorted: bool) -> jax.Array:
  """Sum over received edges, accumulated in float32 whatever the dtype."""
  return jax.ops.segment_sum(
      values.astype(jnp.float32), receivers, num_nodes,
      indices_are_sorted=indices_are_sorted).astype(values.dtype)


# ------------------------------------------------------------ edge chunks
def _chunked(values: jax.Array, size: int, fill: int) -> jax.Array:
  """[E, ...] -> [ceil(E / size), size, ...], padded with `fill`."""
  pad = -values.shape[0] % size
  values = jnp.pad(values, [(0, pad)] + [(0, 0)] * (values.ndim - 1),
                   constant_values=fill)
  return values.reshape(-1, size, *values.shape[1:])


def _edge_mlp(w_he, tail, h_e, edge_const, proj_a, proj_b):
  """The processor's edge MLP, its first layer split by input block:
  `edge_const` holds the enc_e block and the bias, `proj_*` the gathered
  node blocks (module doc)."""
  return _mlp_tail(h_e @ w_he + edge_const + proj_a + proj_b, tail)


def _chunk_step(sequential, encoder, edge, h_e, proj, edges):
  """One step's edge update on one chunk: (new h_e, what the node update
  sums over received edges). h_e None: the first step (h_e = enc_e)."""
  (w_0, b_0), *encoder_tail = encoder
  enc_e = _mlp_tail(edges @ w_0 + b_0, encoder_tail)
  h_e = enc_e if h_e is None else h_e
  w_he, w_ence, b_e, tail = edge
  new = _edge_mlp(w_he, tail, h_e, enc_e @ w_ence + b_e, *proj)
  return new, (new if sequential
               else jnp.concatenate([h_e, enc_e], axis=-1))


def _rebuild_chunk(history, index, encoder, edges, first, second):
  """A step's input h_e on chunk `index`, from the history's snapshot by
  re-running the edge updates since (forward only)."""
  snapshot, updates = history
  h_e = None if snapshot is None else snapshot[index]
  for edge, (proj_a, proj_b) in updates:  # (The sums are not needed.)
    h_e, _ = _chunk_step(True, encoder, edge, h_e,
                         (proj_a[first], proj_b[second]), edges)
  return h_e


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _chunked_edge_update(sequential, encoder, edge, proj, h_e, history,
                         graph):
  """`_chunk_step` over all chunks: ([chunks, chunk, H] new h_e, [N, H or
  2H] sums over received edges).

  `history` = (snapshot, [(edge, proj) of each step since]) rebuilds h_e
  (`_rebuild_chunk`): the backward pass keeps it instead of h_e. Both
  passes work chunk by chunk, in place: no [E, ...] buffer but h_e (or its
  cotangent), its replacement and the snapshots.
  """
  edges, first, second, receivers = graph
  proj_a, proj_b = proj
  num_nodes, width = proj_a.shape

  def body(index, carry):
    out, total = carry
    new, summed = _chunk_step(
        sequential, encoder, edge, None if h_e is None else out[index],
        (proj_a[first[index]], proj_b[second[index]]), edges[index])
    total = total.at[receivers[index]].add(
        summed.astype(jnp.float32), mode="drop", indices_are_sorted=True)
    return out.at[index].set(new), total

  out = (jnp.zeros(first.shape + (width,), proj_a.dtype) if h_e is None
         else h_e)  # Overwritten chunk by chunk.
  total = jnp.zeros((num_nodes, width if sequential else 2 * width),
                    jnp.float32)
  out, total = jax.lax.fori_loop(0, edges.shape[0], body, (out, total))
  return out, total.astype(proj_a.dtype)


def _chunked_edge_update_fwd(sequential, *args):
  args = jax.custom_derivatives.custom_vjp_primal_tree_values(args)
  encoder, edge, proj, _, history, graph = args
  return (_chunked_edge_update(sequential, *args),
          (encoder, edge, proj, history, graph))


def _chunked_edge_update_bwd(sequential, residuals, cotangents):
  encoder, edge, proj, history, graph = residuals
  edges, first, second, receivers = graph
  proj_a, proj_b = proj
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
    d_h_e, d_encoder, d_edge, d_proj_a, d_proj_b = carry
    chunk = edges[index], first[index], second[index]
    h_e = _rebuild_chunk(history, index, encoder, *chunk)
    step = functools.partial(_chunk_step, sequential, edges=chunk[0])
    (new, _), vjp = jax.vjp(step, encoder, edge, h_e,
                            (proj_a[chunk[1]], proj_b[chunk[2]]))
    d_new = jnp.zeros_like(new) if out_unused else d_h_e[index]
    d_summed = d_total.at[receivers[index]].get(mode="fill", fill_value=0)
    grads = vjp((d_new, d_summed))
    d_encoder, d_edge = jax.tree.map(jnp.add, (d_encoder, d_edge), grads[:2])
    if h_e is not None:  # Same layout: h_e's cotangent replaces new's.
      d_h_e = d_h_e.at[index].set(grads[2])
    d_a, d_b = grads[3]
    return (d_h_e, d_encoder, d_edge,
            d_proj_a.at[chunk[1]].add(d_a.astype(jnp.float32)),
            d_proj_b.at[chunk[2]].add(d_b.astype(jnp.float32)))

  zeros = functools.partial(jnp.zeros, dtype=jnp.float32)
  d_h_e, d_encoder, d_edge, d_proj_a, d_proj_b = jax.lax.fori_loop(
      0, edges.shape[0], body,
      (d_out, jax.tree.map(jnp.zeros_like, encoder),
       jax.tree.map(jnp.zeros_like, edge), zeros(proj_a.shape),
       zeros(proj_b.shape)))
  d_proj = d_proj_a.astype(proj_a.dtype), d_proj_b.astype(proj_b.dtype)
  first_step = history[0] is None and not history[1]  # h_e was None.
  return (d_encoder, d_edge, d_proj, None if first_step else d_h_e, None,
          None)


_chunked_edge_update.defvjp(_chunked_edge_update_fwd,
                            _chunked_edge_update_bwd, symbolic_zeros=True)


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
    if config.num_steps < 1:
      raise ValueError("model.num_steps must be >= 1 (message-passing "
                       f"steps), got {config.num_steps}")
    defaults = bapst_config()  # For configs older than an option.
    def option(key):
      return config.get(key, defaults[key])
    compute_dtype = option("compute_dtype")
    if compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f"model.compute_dtype must be one of {COMPUTE_DTYPES}, "
                       f"got {compute_dtype!r}")
    chunk = _count_option("edge_chunk_size", option("edge_chunk_size"))
    if chunk and config.implementation != "fused":
      raise ValueError("model.edge_chunk_size needs model.implementation "
                       f"'fused', got {config.implementation!r}")
    edge_features = option("edge_features")
    if edge_features not in EDGE_FEATURES:
      raise ValueError(f"model.edge_features must be one of {EDGE_FEATURES}, "
                       f"got {edge_features!r}")
    channels = _count_option("angular_channels", option("angular_channels"))
    self._config = config
    self._rbf_edges = edge_features == "vector_rbf"
    self._radial_basis = (option("radial_min"), option("radial_max"),
                          option("radial_count"))
    self._aggregation_scale = float(option("aggregation_scale"))
    self._angular = (descriptors.AngularInvariants(channels) if channels
                     else None)
    self._dtype = jnp.dtype(compute_dtype)
    self._remat = bool(option("remat"))
    self._edge_chunk_size = chunk
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
    edges = graph.edges
    if self._angular or self._rbf_edges:
      basis = descriptors.radial_basis(edges, types[graph.senders],
                                       *self._radial_basis)
      if self._angular:
        nodes = jnp.concatenate([nodes, self._angular(
            edges, basis, graph.receivers, nodes.shape[0])], axis=-1)
      if self._rbf_edges:
        edges = jnp.concatenate([edges, basis], axis=-1)
    enc_v = self._encoder_node(nodes.astype(self._dtype))
    process = (self._process_fused if config.implementation == "fused"
               else self._process_reference)
    h_v = process(enc_v, edges.astype(self._dtype), graph.senders,
                  graph.receivers)
    return self._decoder(h_v.astype(jnp.float32))[..., 0]

  def _run_steps(self, step, h_v, h_e):
    """`h_v, h_e = step(edge_mlp, node_mlp, h_v, h_e)` for every block, each
    step in `hk.remat` with `remat` and unchunked edges (chunked edges
    recompute their own way, see the module doc)."""
    remat = self._remat and not self._edge_chunk_size
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
      return self._aggregation_scale * _sum_received(
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
    """Same function; first layers split by input block (see module doc)."""
    sequential = self._config.update_order == "sequential"
    width = self._config.mlp_sizes[-1]  # Of h_v, enc_v, h_e and enc_e alike.
    num_nodes = enc_v.shape[0]
    chunk = min(self._edge_chunk_size, max(edges.shape[0], 1))
    # The edge MLP's input is [h_e, enc_e, node_in[a], node_in[b]] with
    # node_in = [h_v, enc_v] and (a, b) = (receiver, sender) when sequential,
    # (sender, receiver) when parallel.
    first, second = ((receivers, senders) if sequential
                     else (senders, receivers))
    if chunk:
      # Padding edges gather node 0 and are summed into no node.
      graph = (_chunked(edges, chunk, 0), _chunked(first, chunk, 0),
               _chunked(second, chunk, 0),
               _chunked(receivers, chunk, num_nodes))
      encoder = ([self._encoder_edge.layer(0, edges.shape[-1])]
                 + self._encoder_edge.tail_layers())
      # Steps between h_e snapshots; the others are rebuilt from them.
      interval = (math.ceil(math.sqrt(len(self._processor))) if self._remat
                  else 1)
      # The edge state: (h_e, history), h_e None before the first step
      # (enc_e, computed per chunk).
      state = None, (None, [])
    else:
      enc_e = self._encoder_edge(edges)
      state = enc_e  # The edge state: h_e.

    def encoder_terms(edge_mlp):
      """The edge MLP's first layer on encoder outputs (enc_e's block is
      per chunk when chunked)."""
      w_e, b_e = edge_mlp.layer(0, 6 * width)
      _, w_ence, _, w_enca, _, w_encb = jnp.split(w_e, 6)
      edge_const = None if chunk else enc_e @ w_ence + b_e
      return edge_const, enc_v @ w_enca, enc_v @ w_encb

    def edge_update(edge_mlp, state, edge_const, proj_a, proj_b):
      """(New state, sums over received edges for the node update)."""
      w_e, b_e = edge_mlp.layer(0, 6 * width)
      w_he, w_ence = jnp.split(w_e, 6)[:2]
      tail = edge_mlp.tail_layers()
      if not chunk:
        h_e = _edge_mlp(w_he, tail, state, edge_const, proj_a[first],
                        proj_b[second])
        summed = (h_e if sequential
                  else jnp.concatenate([state, enc_e], axis=-1))
        return h_e, _sum_received(summed, receivers, num_nodes, True)
      h_e, (snapshot, updates) = state
      edge, proj = (w_he, w_ence, b_e, tail), (proj_a, proj_b)
      new_h_e, received = _chunked_edge_update(
          sequential, encoder, edge, proj, h_e, (snapshot, updates), graph)
      updates = updates + [(edge, proj)]
      history = ((new_h_e, []) if len(updates) == interval
                 else (snapshot, updates))
      return (new_h_e, history), received

    # Encoder terms: once per graph when the blocks' weights are shared.
    shared = (encoder_terms(self._processor[0][0])
              if self._config.shared_weights else None)

    def step(edge_mlp, node_mlp, h_v, state):
      edge_const, enc_a, enc_b = shared or encoder_terms(edge_mlp)
      w_e, _ = edge_mlp.layer(0, 6 * width)
      _, _, w_ha, _, w_hb, _ = jnp.split(w_e, 6)
      proj_a = h_v @ w_ha + enc_a  # [N, H]: project nodes, then gather.
      proj_b = h_v @ w_hb + enc_b
      state, received = edge_update(edge_mlp, state, edge_const, proj_a,
                                    proj_b)
      received = self._aggregation_scale * received
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
      # Large systems: the fused processor's edges in chunks of this many
      # (0 = all at once), with bounded backward memory (module docstring).
      "edge_chunk_size": 0,
      # Recompute instead of storing in the backward pass: each step, or
      # with edge chunks fewer edge-feature snapshots (module docstring).
      "remat": False,
      "compute_dtype": "float32",  # Or "bfloat16" (f32 params and loss).
      # Departures for fast learning (`configs/fast.py`, glassy_jax.descriptors):
      "edge_features": "vector",  # Or "vector_rbf": + radial basis of |r|.
      "radial_min": 0.7,  # Radial basis: `radial_count` Gaussian centres
      "radial_max": 2.0,  # from `radial_min` to `radial_max`, per sender type.
      "radial_count": 24,
      # > 0: rotation-invariant node features from this many learned channels
      # of edge-vector and edge-tensor sums.
      "angular_channels": 0,
      # Sums over received edges are multiplied by this (1 = DeepMind's sum;
      # ~1/41 makes them neighbour means at the default cutoff).
      "aggregation_scale": 1.0,
  })


def _count_option(key: str, value) -> int:
  """An integer option >= 0 where 0 turns the feature off."""
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise ValueError(f"model.{key} must be an integer >= 0 (0 = off), "
                     f"got {value!r}")
  return value


def make_predictor(network: hk.Transformed, target_mean: float = 0.0,
                   target_std: float = 1.0):
  """The one inference path: jitted `predict(params, graph) -> [n_node]` in
  target units (standardised training targets undone).

  Training-time evaluation, `apply`, `evaluate` and the plots all use it, so
  their metrics agree on every backend: matrix products run in full float32
  (GPUs would otherwise use TF32 and drift ~1e-3 from the published
  predictions).
  """

  @jax.jit
  def predict(params: hk.Params, graph: jraph.GraphsTuple) -> jax.Array:
    with jax.default_matmul_precision("highest"):
      return network.apply(params, None, graph) * target_std + target_mean

  return predict


def make_network(config: ml_collections.ConfigDict) -> hk.Transformed:
  """`init(rng, graph)` / `apply(params, None, graph) -> [n_node]`."""

  def forward(graph: jraph.GraphsTuple) -> jax.Array:
    return BapstNetwork(config)(graph)

  return hk.transform(forward)

