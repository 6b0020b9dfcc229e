"""The processors on their own: each against the message-passing steps
written densely in numpy (the whole network's tests are in test_models.py)."""

import functools

import haiku as hk
import jax
import numpy as np
import pytest

from glassy_jax.network import layers
from glassy_jax.network import model_config as options
from glassy_jax.network import processors


@pytest.mark.parametrize("order, implementation, chunk", [
    (order, implementation, 0) for order in options.UPDATE_ORDERS
    for implementation in options.IMPLEMENTATIONS] + [
        (order, "fused", 5) for order in options.UPDATE_ORDERS])
def test_processor_equals_dense_numpy(order, implementation, chunk):
  """Each processor, with one-layer update functions (Linear-ReLU), computes
  the steps written with dense incidence matrices in float64: the gathers,
  the input orders and the scaled sums, independently of jraph and of the
  fused blocks."""
  rng = np.random.default_rng(0)
  n, e, h, scale = 6, 17, 4, 0.5
  senders = rng.integers(0, n, e).astype(np.int32)
  receivers = np.sort(rng.integers(0, n, e)).astype(np.int32)
  enc_v = rng.normal(size=(n, h)).astype(np.float32)
  edge_inputs = rng.normal(size=(e, 3)).astype(np.float32)
  config = options.ModelConfig(
      mlp_sizes=(h,), num_steps=2, update_order=order,
      implementation=implementation, edge_chunk_size=chunk,
      aggregation_scale=scale)

  @hk.transform
  def forward():
    mlp = functools.partial(layers.MLP, (h,), True, np.float32)
    block = processors.Block(mlp(name="edge"), mlp(name="node"))
    encoder = mlp(name="encoder")
    encoded = processors.Encoded(
        enc_v, None if chunk else encoder(edge_inputs), edge_inputs)
    processor = processors.make_processor(config, [block] * 2, encoder)
    return processor(encoded, senders, receivers)

  params = forward.init(jax.random.PRNGKey(0))
  with jax.default_matmul_precision("highest"):
    actual = np.asarray(forward.apply(params, None))

  w = {module.split("/")[0]: {k: np.float64(v) for k, v in leaves.items()}
       for module, leaves in params.items()}

  def mlp(name, x):
    return np.maximum(x @ w[name]["w"] + w[name]["b"], 0)

  incoming, outgoing = np.eye(n)[receivers], np.eye(n)[senders]  # [E, N].
  h_e = enc_e = mlp("encoder", np.float64(edge_inputs))
  h_v = enc_v.astype(np.float64)
  for _ in range(2):
    node_in = np.concatenate([h_v, enc_v], axis=1)
    edge_in = np.concatenate([h_e, enc_e], axis=1)
    if order == "sequential":
      h_e = mlp("edge", np.concatenate(
          [edge_in, incoming @ node_in, outgoing @ node_in], axis=1))
      h_v = mlp("node", np.concatenate(
          [scale * incoming.T @ h_e, node_in], axis=1))
    else:
      h_e, h_v = (
          mlp("edge", np.concatenate(
              [edge_in, outgoing @ node_in, incoming @ node_in], axis=1)),
          mlp("node", np.concatenate(
              [node_in, scale * incoming.T @ edge_in], axis=1)))
  np.testing.assert_allclose(actual, h_v, rtol=1e-5, atol=1e-5)
