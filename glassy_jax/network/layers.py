"""Linear-ReLU building blocks whose layers can be read one by one.

The fused processor (`processors.py`) and the chunked edge update
(`chunked_edges.py`) apply an MLP's first layer by blocks of its input, so
the layers are exposed as (w, b) pairs rather than hidden in `hk.nets.MLP`.
Parameters are initialised as DeepMind's Sonnet 1 model was (TF1 defaults),
which the published checkpoint's shapes and names follow.
"""

from typing import List, Sequence, Tuple

import haiku as hk
import jax
import jax.numpy as jnp

WEIGHT_INIT = hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
BIAS_INIT = hk.initializers.VarianceScaling(0.1, "fan_in", "truncated_normal")

Layer = Tuple[jax.Array, jax.Array]  # (w [in, out], b [out]).


class LinearParams(hk.Module):
  """The `w` and `b` of one linear layer, made on first use (float32) and
  returned in the compute dtype."""

  def __init__(self, out_size: int, dtype: jnp.dtype, name: str):
    super().__init__(name=name)
    self._out_size = out_size
    self._dtype = dtype

  def __call__(self, in_size: int) -> Layer:
    w = hk.get_parameter("w", [in_size, self._out_size], init=WEIGHT_INIT)
    b = hk.get_parameter("b", [self._out_size], init=BIAS_INIT)
    return w.astype(self._dtype), b.astype(self._dtype)


def mlp_tail(hidden: jax.Array, layers: Sequence[Layer],
             activate_final: bool = True) -> jax.Array:
  """Layers 1.. of an MLP on the pre-activation of its layer 0."""
  for w, b in layers:
    hidden = jax.nn.relu(hidden) @ w + b
  return jax.nn.relu(hidden) if activate_final else hidden


class MLP(hk.Module):
  """Linear-ReLU stack; `layer(0, ...)` can be applied by input blocks."""

  def __init__(self, output_sizes: Sequence[int], activate_final: bool,
               dtype: jnp.dtype, name: str):
    super().__init__(name=name)
    self._sizes = tuple(output_sizes)
    self._layers = [LinearParams(size, dtype, name=f"linear_{index}")
                    for index, size in enumerate(output_sizes)]
    self._activate_final = activate_final

  def layer(self, index: int, in_size: int) -> Layer:
    """Weights and bias of layer `index`."""
    return self._layers[index](in_size)

  def tail_layers(self) -> List[Layer]:
    """[(w, b)] of layers 1.., for `mlp_tail`."""
    return [self.layer(index, self._sizes[index - 1])
            for index in range(1, len(self._layers))]

  def tail(self, hidden: jax.Array) -> jax.Array:
    """Layers 1.. applied to the (pre-activation) output of layer 0."""
    return mlp_tail(hidden, self.tail_layers(), self._activate_final)

  def __call__(self, inputs: jax.Array) -> jax.Array:
    w, b = self.layer(0, inputs.shape[-1])
    return self.tail(inputs @ w + b)


def node_outputs(outputs: jax.Array) -> jax.Array:
  """A decoder's [N, K] outputs as [N] when K = 1 (DeepMind's one
  propensity per particle), else one column per time index."""
  return outputs[..., 0] if outputs.shape[-1] == 1 else outputs


def sum_received(values: jax.Array, receivers: jax.Array, num_nodes: int,
                 indices_are_sorted: bool) -> jax.Array:
  """Sum over received edges, accumulated in float32 whatever the dtype."""
  return jax.ops.segment_sum(
      values.astype(jnp.float32), receivers, num_nodes,
      indices_are_sorted=indices_are_sorted).astype(values.dtype)
