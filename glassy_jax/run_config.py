"""Every value of a training config checked before any work starts.

A bad value is found here, at once, with one line per value, instead of as
a traceback deep in the input pipeline (`graphs_per_device=0`), or not at
all (a negative cutoff builds graphs of self-edges only; a negative
learning rate ascends the loss). The network's own options are checked by
`model_config.ModelConfig`, the inputs' by `input_pipeline.input_spec`.
"""

from typing import Any, Callable, List, Tuple

import ml_collections

from glassy_jax import input_pipeline
from glassy_jax import model_config

SCHEDULES = ("constant", "step", "cosine")
METRICS = ("per_graph", "pooled")


class ConfigError(ValueError):
  """One or more config values cannot be used (one line each)."""


def _positive(value) -> bool:
  return value > 0


def _non_negative(value) -> bool:
  return value >= 0


def _at_least_one(value) -> bool:
  return value >= 1


def _fraction(value) -> bool:
  return 0 <= value < 1


# (key, test, what it must be).
_CHECKS: Tuple[Tuple[str, Callable[[Any], bool], str], ...] = (
    ("data.cutoff", _positive, "> 0"),
    ("data.time_index", _non_negative, ">= 0"),
    ("data.max_train_files", _non_negative, ">= 0 (0 = all)"),
    ("data.max_test_files", _non_negative, ">= 0 (0 = all)"),
    ("data.bucket_nodes", _non_negative, ">= 0 (0 = one bucket)"),
    ("data.validation_files", _non_negative, ">= 0 (0 = none)"),
    ("optimizer.learning_rate", _positive, "> 0"),
    ("optimizer.b1", _fraction, "in [0, 1)"),
    ("optimizer.b2", _fraction, "in [0, 1)"),
    ("optimizer.eps", _positive, "> 0"),
    ("optimizer.clip_global_norm", _non_negative, ">= 0 (0 = no clipping)"),
    ("optimizer.weight_decay", _non_negative, ">= 0"),
    ("optimizer.warmup_steps", _non_negative, ">= 0"),
    ("optimizer.step_epochs", _at_least_one, ">= 1"),
    ("optimizer.step_gamma", _positive, "> 0"),
    ("train.num_epochs", _non_negative, ">= 0"),
    ("train.num_steps", _non_negative, ">= 0 (0 = use num_epochs)"),
    ("train.time_budget_s", _non_negative, ">= 0 (0 = none)"),
    ("train.graphs_per_device", _at_least_one, ">= 1"),
    ("train.eval_every", _at_least_one, ">= 1"),
    ("train.log_every", _at_least_one, ">= 1"),
    ("train.checkpoint_every", _at_least_one, ">= 1"),
    ("train.keep_checkpoints", _at_least_one, ">= 1"),
    ("train.max_nonfinite_steps", _non_negative, ">= 0"),
    ("train.max_rollbacks", _non_negative, ">= 0"),
    ("train.rollback_lr_factor", lambda v: 0 < v <= 1, "in (0, 1]"),
)
_CHOICES = (("optimizer.schedule", SCHEDULES), ("train.metric", METRICS))


def _get(config: ml_collections.ConfigDict, key: str) -> Any:
  section, name = key.split(".")
  return config[section][name]


def problems(config: ml_collections.ConfigDict) -> List[str]:
  """One line per value `config` cannot be trained with (empty if none)."""
  found = []
  for key, test, wanted in _CHECKS:
    value = _get(config, key)
    if isinstance(value, bool) or not test(value):
      found.append(f"{key} must be {wanted}, got {value!r}")
  for key, choices in _CHOICES:
    if _get(config, key) not in choices:
      found.append(f"{key} must be one of {choices}, got "
                   f"{_get(config, key)!r}")
  if not (config.train.num_steps or config.train.num_epochs):
    found.append("train.num_steps or train.num_epochs must be > 0")
  # The network's and the inputs' own checks, each problem said once (the
  # input spec also refuses a cutoff <= 0).
  for build in (lambda: model_config.ModelConfig.of(config.model),
                lambda: input_pipeline.input_spec(config)):
    try:
      build()
    except (ValueError, TypeError) as e:
      if str(e) not in found:
        found.append(str(e))
  return found


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` listing every bad value, one per line."""
  found = problems(config)
  if found:
    raise ConfigError("\n".join(found))
