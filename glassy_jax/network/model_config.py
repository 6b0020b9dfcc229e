"""The network's options, typed and validated in one place.

`ModelConfig()` is the network of `docs/specification.md` ("Network";
DeepMind's checkpoints); every other value of a field is a named departure
(`configs/`, BUILD_NOTES.md). Training configs hold the same fields as an
`ml_collections.ConfigDict` (`as_config_dict`), so absl overrides such as
`--config.model.num_steps=3` work; the network, checkpoints and the TF
converter take the typed form (`ModelConfig.of`).
"""

import dataclasses
from typing import Any, Mapping, Sequence, Tuple, Union

import ml_collections

UPDATE_ORDERS = ("sequential", "parallel")
NODE_FEATURES = ("type", "one_hot")
IMPLEMENTATIONS = ("reference", "fused")
COMPUTE_DTYPES = ("float32", "bfloat16")
EDGE_FEATURES = ("vector", "vector_rbf")
ARCHITECTURES = ("bapst", "gcn")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The architecture and how it is computed (`models.BapstNetwork`)."""
  # "gcn": the graph convolutional baseline (glassy_jax/network/gcn.py), which reads
  # mlp_sizes, num_steps and decoder_sizes only.
  architecture: str = "bapst"
  mlp_sizes: Tuple[int, ...] = (64, 64)  # Encoder and update MLPs' sizes.
  # The decoder MLP's sizes; the last is the number of outputs.
  decoder_sizes: Tuple[int, ...] = (64, 64, 1)
  num_steps: int = 7  # Message-passing steps.
  shared_weights: bool = True  # One update block for every step (DeepMind).
  update_order: str = "sequential"  # DeepMind; or "parallel".
  node_features: str = "type"  # One float; or "one_hot".
  implementation: str = "fused"  # Same function as "reference".
  # Large systems: the fused processor's edges in chunks of this many (0 =
  # all at once), with bounded backward memory (glassy_jax/network/chunked_edges.py).
  edge_chunk_size: int = 0
  # Recompute instead of storing in the backward pass: each step, or with
  # edge chunks fewer edge-feature snapshots.
  remat: bool = False
  compute_dtype: str = "float32"  # Or "bfloat16" (f32 params and loss).
  # Departures for fast learning (`configs/fast.py`, glassy_jax.network.descriptors):
  edge_features: str = "vector"  # Or "vector_rbf": + radial basis of |r|.
  radial_min: float = 0.7  # Radial basis: `radial_count` Gaussian centres
  radial_max: float = 2.0  # from `radial_min` to `radial_max`, per sender type.
  radial_count: int = 24  # Number of Gaussian centres of the radial basis.
  # > 0: rotation-invariant node features from this many learned channels of
  # edge-vector and edge-tensor sums.
  angular_channels: int = 0
  # Sums over received edges are multiplied by this (1 = DeepMind's sum;
  # ~1/41 makes them neighbour means at the default cutoff).
  aggregation_scale: float = 1.0
  # Node input columns after the type: structural descriptors
  # (`glassy_jax.network.model_inputs`, data.descriptors); 0 = the type alone.
  node_descriptors: int = 0
  # A linear map of the descriptors added to the decoder's output, which
  # training starts at the ridge fit (`train.py`): the network then learns
  # what the linear model misses.
  descriptor_readout: bool = False
  # An edge head on the final node features of each pair, trained on BOTAN's
  # bond targets (`glassy_jax.physics.bond_targets`, train.bond_target_weight);
  # predictions never use it.
  bond_head: bool = False

  def __post_init__(self):
    _check_choice("architecture", self.architecture, ARCHITECTURES)
    _check_choice("update_order", self.update_order, UPDATE_ORDERS)
    _check_choice("node_features", self.node_features, NODE_FEATURES)
    _check_choice("implementation", self.implementation, IMPLEMENTATIONS)
    _check_choice("compute_dtype", self.compute_dtype, COMPUTE_DTYPES)
    _check_choice("edge_features", self.edge_features, EDGE_FEATURES)
    if self.num_steps < 1:
      raise ValueError("model.num_steps must be >= 1 (message-passing "
                       f"steps), got {self.num_steps}")
    for key in ("edge_chunk_size", "angular_channels", "node_descriptors"):
      value = getattr(self, key)
      if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"model.{key} must be an integer >= 0 (0 = off), "
                         f"got {value!r}")
    if self.descriptor_readout and not self.node_descriptors:
      raise ValueError("model.descriptor_readout needs node descriptors "
                       "(model.node_descriptors > 0)")
    if self.bond_head and self.architecture != "bapst":
      raise ValueError("model.bond_head needs model.architecture 'bapst', "
                       f"got {self.architecture!r}")
    if self.edge_chunk_size and self.implementation != "fused":
      raise ValueError("model.edge_chunk_size needs model.implementation "
                       f"'fused', got {self.implementation!r}")

  @classmethod
  def of(cls, config: Union["ModelConfig", Mapping[str, Any],
                            ml_collections.ConfigDict]) -> "ModelConfig":
    """The typed form of a training config's `model` or of a checkpoint's
    `model_config`. Fields it lacks (files older than an option) take
    their defaults; a field this version does not know is an error."""
    if isinstance(config, cls):
      return config
    values = (config.to_dict() if isinstance(config, ml_collections.ConfigDict)
              else dict(config))
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f"unknown model option(s) {', '.join(unknown)}")
    for key in ("mlp_sizes", "decoder_sizes"):
      if key in values:
        values[key] = tuple(values[key])
    return cls(**values)

  def to_dict(self) -> dict:
    """JSON-ready: what checkpoints store as `model_config`."""
    return dataclasses.asdict(self)

  def as_config_dict(self) -> ml_collections.ConfigDict:
    """The fields as a training config's `model` (absl-overridable)."""
    return ml_collections.ConfigDict(self.to_dict())


def outputs_for(time_indices: Sequence[int]) -> int:
  """The decoder outputs (`decoder_sizes[-1]`) of a network of these time
  indices: one per index of a joint model, one when there are none (a
  model of a single `time_index`)."""
  return len(time_indices) or 1


def _check_choice(key: str, value: Any, choices: Tuple[str, ...]) -> None:
  if value not in choices:
    raise ValueError(f"model.{key} must be one of {choices}, got {value!r}")
