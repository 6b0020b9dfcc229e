"""A training run's configuration, typed and checked once, as it is set up.

Configs are `ml_collections.ConfigDict`s (`configs/`), so that absl
overrides such as `--config.optimizer.learning_rate=1e-5` work. A run takes
their typed form, `RunConfig.of(config)`: `DataConfig`, `OptimizerConfig`
and `TrainConfig` beside the network's `model_config.ModelConfig`, frozen
dataclasses whose defaults are DeepMind's recipe (`configs/bapst.py` builds
its sections from them). Each checks its values as it is made, and
`RunConfig` those that tie sections together, so a bad value is found at
once, before any work, with one line per value (`errors.ConfigError`),
instead of as a traceback deep in the input pipeline
(`graphs_per_device=0`), or not at all (a negative cutoff builds graphs of
self-edges only; a negative learning rate ascends the loss).
"""

import dataclasses
import json
from typing import Any, Callable, Dict, List, Mapping, Tuple, Union

import ml_collections

from glassy_jax import errors
from glassy_jax.formats import data as data_lib
from glassy_jax.network import model_config
from glassy_jax.network import model_inputs

SCHEDULES = ("constant", "step", "cosine")
METRICS = ("per_graph", "pooled")
# The inputs DeepMind's network reads: the defaults of `DataConfig`'s.
_DEEPMIND_INPUTS = model_inputs.InputSpec()


def _positive(value) -> bool:
  return value > 0


def _non_negative(value) -> bool:
  return value >= 0


def _at_least_one(value) -> bool:
  return value >= 1


def _fraction(value) -> bool:
  return 0 <= value < 1


# Per section: (field, test, what it must be), and (field, choices).
Checks = Tuple[Tuple[str, Callable[[Any], bool], str], ...]
Choices = Tuple[Tuple[str, Tuple[str, ...]], ...]


class _Section:
  """What the typed sections share: made from a config's section (`of`),
  given back as one (`as_config_dict`), refused whole when a value is bad
  (every problem, one line each)."""
  _NAME = ""  # The section's key in a config.
  _CHECKS: Checks = ()
  _CHOICES: Choices = ()

  def __post_init__(self):
    for field in dataclasses.fields(self):  # JSON lists, ConfigDict tuples.
      if isinstance(field.default, tuple):
        object.__setattr__(self, field.name,
                           tuple(getattr(self, field.name)))
    found = self.problems()
    if found:
      raise errors.ConfigError("\n".join(found))

  def problems(self) -> List[str]:
    """One line per value of the section that cannot be used."""
    found = []
    for name, test, wanted in self._CHECKS:
      value = getattr(self, name)
      if isinstance(value, bool) or not test(value):
        found.append(f"{self._NAME}.{name} must be {wanted}, got {value!r}")
    for name, choices in self._CHOICES:
      value = getattr(self, name)
      if value not in choices:
        found.append(f"{self._NAME}.{name} must be one of {choices}, got "
                     f"{value!r}")
    return found

  @classmethod
  def of(cls, config: Union["_Section", Mapping[str, Any],
                            ml_collections.ConfigDict]):
    """The typed form of a config's section; an option this version does
    not know is an error."""
    if isinstance(config, cls):
      return config
    values = (config.to_dict() if isinstance(config, ml_collections.ConfigDict)
              else dict(config))
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
      raise errors.ConfigError(
          f"unknown {cls._NAME} option(s) {', '.join(unknown)}")
    return cls(**values)

  def as_config_dict(self) -> ml_collections.ConfigDict:
    """The fields as a config's section (absl-overridable)."""
    return ml_collections.ConfigDict(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class DataConfig(_Section):
  """What a run reads, and what its network sees of it (`input_pipeline`)."""
  _NAME = "data"
  _CHECKS = (
      ("time_index", _non_negative, ">= 0"),
      ("max_train_files", _non_negative, ">= 0 (0 = all)"),
      ("max_test_files", _non_negative, ">= 0 (0 = all)"),
      ("bucket_nodes", _non_negative, ">= 0 (0 = one bucket)"),
      ("validation_files", _non_negative, ">= 0 (0 = none)"),
  )

  # DeepMind's layout, DIR/{train,test}/aggregated*. Unset = the demo data.
  directory: str = ""
  time_index: int = 9  # 0..9; 9 is IS = 1/e (tau_alpha).
  # A departure: one joint model for several indices, one decoder output
  # each (model.decoder_sizes[-1] = their number; configs/fast_all_times.py).
  # Empty: DeepMind's one model per data.time_index.
  time_indices: Tuple[int, ...] = ()
  max_train_files: int = 0  # 0 = all.
  max_test_files: int = 0
  # The graph (and descriptors) of each configuration: `model_inputs`.
  cutoff: float = _DEEPMIND_INPUTS.cutoff
  # Departures for slow dynamics (configs/long_time.py, model_inputs.py):
  # graphs (and descriptors) from the inherent structures; coarse-grained
  # structural descriptors as node inputs (`model_inputs.DESCRIPTORS`;
  # model.node_descriptors must match their number) at these lengths.
  inherent_structures: bool = _DEEPMIND_INPUTS.inherent_structures
  descriptors: str = _DEEPMIND_INPUTS.descriptors
  coarse_scales: Tuple[float, ...] = _DEEPMIND_INPUTS.coarse_scales
  # > 0: the last this many training files are the validation split the run
  # evaluates on and picks its best checkpoint by; the test split is scored
  # once at the end. 0: DeepMind's evaluation on the test split.
  validation_files: int = 0
  standardize_targets: bool = False
  # Size buckets: graphs whose node counts round up to the same multiple of
  # this share a padding budget (one compiled shape each); 0 = one bucket.
  bucket_nodes: int = 256

  def problems(self) -> List[str]:
    found = super().problems()
    indices = self.time_indices
    valid = range(data_lib.NUM_TIME_INDICES)
    if (len(indices) == 1 or len(set(indices)) < len(indices)
        or not set(indices) <= set(valid)):
      found.append(
          "data.time_indices must be empty or 2 or more distinct indices in "
          f"{valid.start}..{valid.stop - 1} (one: data.time_index), got "
          f"{indices}")
    try:
      self.input_spec()
    except ValueError as e:
      found.append(str(e))
    return found

  @property
  def targets(self) -> data_lib.TimeIndex:
    """What the run trains on: `time_index` ([N] targets), or with
    `time_indices` set those indices ([N, K] targets, a joint model)."""
    return self.time_indices or self.time_index

  def input_spec(self) -> model_inputs.InputSpec:
    """What the network reads (without the descriptors' statistics, which
    the training split gives)."""
    return model_inputs.InputSpec(
        cutoff=self.cutoff, inherent_structures=self.inherent_structures,
        descriptors=self.descriptors, coarse_scales=self.coarse_scales)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig(_Section):
  """Adam and its learning-rate schedule (`train_step.make_optimizer`)."""
  _NAME = "optimizer"
  _CHECKS = (
      ("learning_rate", _positive, "> 0"),
      ("b1", _fraction, "in [0, 1)"),
      ("b2", _fraction, "in [0, 1)"),
      ("eps", _positive, "> 0"),
      ("clip_global_norm", _non_negative, ">= 0 (0 = no clipping)"),
      ("weight_decay", _non_negative, ">= 0"),
      ("warmup_steps", _non_negative, ">= 0"),
      ("step_epochs", _at_least_one, ">= 1"),
      ("step_gamma", _positive, "> 0"),
  )
  _CHOICES = (("schedule", SCHEDULES),)

  learning_rate: float = 1e-4
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  clip_global_norm: float = 1.0  # 0 = no clipping.
  weight_decay: float = 0.0  # A departure: > 0 is AdamW's decay.
  # A departure: model.descriptor_readout stays at its ridge start.
  freeze_readout: bool = False
  schedule: str = "constant"  # Or "step" (StepLR), "cosine".
  warmup_steps: int = 0  # Linear warm-up (cosine schedule).
  step_epochs: int = 10  # StepLR period, in epochs.
  step_gamma: float = 0.3


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Section):
  """The training loop (`train.train_and_evaluate`)."""
  _NAME = "train"
  _CHECKS = (
      ("num_epochs", _non_negative, ">= 0"),
      ("num_steps", _non_negative, ">= 0 (0 = use num_epochs)"),
      ("time_budget_s", _non_negative, ">= 0 (0 = none)"),
      ("graphs_per_device", _at_least_one, ">= 1"),
      ("eval_every", _at_least_one, ">= 1"),
      ("log_every", _at_least_one, ">= 1"),
      ("checkpoint_every", _at_least_one, ">= 1"),
      ("keep_checkpoints", _at_least_one, ">= 1"),
      ("max_nonfinite_steps", _non_negative, ">= 0"),
      ("max_rollbacks", _non_negative, ">= 0"),
      ("rollback_lr_factor", lambda v: 0 < v <= 1, "in (0, 1]"),
      ("bond_target_weight", _non_negative, ">= 0 (0 = off)"),
  )
  _CHOICES = (("metric", METRICS),)

  num_epochs: int = 1000
  num_steps: int = 0  # Overrides num_epochs when > 0.
  # > 0: stop (evaluate, checkpoint) after this many wall seconds.
  time_budget_s: float = 0.0
  graphs_per_device: int = 1  # Global batch = devices x this.
  augment_rotations: bool = True  # Axis permutation and reflection.
  eval_every: int = 1000
  log_every: int = 100
  checkpoint_every: int = 1000
  keep_checkpoints: int = 3
  # Checkpoints are written in the background while training goes on
  # (orbax-checkpoint); False: each save finishes before the next step.
  async_checkpoints: bool = True
  seed: int = 42
  # False (a departure): best.npz is the latest evaluated state, so that a
  # run on all training files picks nothing on the test split.
  select_best: bool = True
  metric: str = "per_graph"  # Mean of per-graph Pearson; or "pooled".
  # Divergence: skip non-finite steps; past this many per log interval,
  # roll back to the last checkpoint with the learning rate scaled down.
  max_nonfinite_steps: int = 10
  rollback_lr_factor: float = 0.5
  max_rollbacks: int = 3
  # A departure (BOTAN's bond target, `glassy_jax.physics.bond_targets`): > 0 adds
  # this times the edge head's mean squared error to the loss.
  bond_target_weight: float = 0.0

  def problems(self) -> List[str]:
    found = super().problems()
    if not (self.num_steps or self.num_epochs):
      found.append("train.num_steps or train.num_epochs must be > 0")
    return found

  def total_steps(self, steps_per_epoch: int) -> int:
    return self.num_steps or self.num_epochs * steps_per_epoch

  @property
  def metric_key(self) -> str:
    """The test metric `metric` names (`metrics.score_split`'s key)."""
    return "pearson_a" if self.metric == "per_graph" else "pooled_pearson_a"


# The typed sections of a config, in the order their problems are told.
_SECTIONS = (("data", DataConfig), ("optimizer", OptimizerConfig),
             ("train", TrainConfig), ("model", model_config.ModelConfig))


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """A training config, typed: what `train.train_and_evaluate` runs."""
  data: DataConfig
  model: model_config.ModelConfig
  optimizer: OptimizerConfig
  train: TrainConfig
  init_from: str = ""  # A checkpoint to start from (e.g. a converted TF one).
  # The config as given (JSON), which checkpoints record.
  recorded: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    found = self.problems()
    if found:
      raise errors.ConfigError("\n".join(found))

  def problems(self) -> List[str]:
    """What ties the sections together: the network reads the inputs the
    data give, and has one output per time index."""
    found = []
    spec = self.data.input_spec()
    if spec.num_descriptors != self.model.node_descriptors:
      found.append(
          f"model.node_descriptors must be {spec.num_descriptors}, the "
          "number of descriptors of "
          f"data.descriptors={spec.descriptors!r} at "
          f"data.coarse_scales={spec.coarse_scales}; got "
          f"{self.model.node_descriptors}")
    outputs = self.model.decoder_sizes[-1]
    if outputs != model_config.outputs_for(self.data.time_indices):
      found.append(
          "model.decoder_sizes[-1] must equal len(data.time_indices) (one "
          f"output per time index; 1 when unset), got {outputs} outputs for "
          f"data.time_indices={self.data.time_indices}")
    bonds = self.train.bond_target_weight > 0
    if bonds != self.model.bond_head:
      found.append(
          "train.bond_target_weight > 0 and model.bond_head go together (the "
          "edge head learns only from bond targets), got "
          f"bond_target_weight={self.train.bond_target_weight} and "
          f"bond_head={self.model.bond_head}")
    if bonds and self.data.time_indices:
      found.append("bond targets are defined at one time index "
                   "(data.time_index), not for a joint model of "
                   f"data.time_indices={self.data.time_indices}")
    return found

  @classmethod
  def of(cls, config: Union["RunConfig", ml_collections.ConfigDict]
         ) -> "RunConfig":
    """The typed form of a training config; `errors.ConfigError` lists
    every value it cannot be trained with, one per line."""
    if isinstance(config, cls):
      return config
    found: List[str] = []
    sections = {}
    for name, kind in _SECTIONS:
      try:
        sections[name] = kind.of(config[name])
      except (ValueError, TypeError) as e:
        found += [line for line in str(e).splitlines() if line not in found]
    if found:
      raise errors.ConfigError("\n".join(found))
    return cls(**sections, init_from=config.init_from,
               recorded=json.loads(config.to_json()))


def problems(config: ml_collections.ConfigDict) -> List[str]:
  """One line per value `config` cannot be trained with (empty if none)."""
  try:
    RunConfig.of(config)
  except errors.ConfigError as e:
    return str(e).splitlines()
  return []

