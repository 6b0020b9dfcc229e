"""Errors a user can fix, which every program tells in one line.

`UserError` is the one class the programs (`glassy_jax/programs/`) catch,
with `OSError` (a file that cannot be read or written): its message is
whole sentences about the user's input, one line per problem, and is
printed as `error: ...` lines instead of a traceback. Each module derives
the kind that names its concern:

* `data.DataError`: a dataset file is missing, malformed or inconsistent;
* `checkpoints.CheckpointError`, `tf_checkpoint.TFCheckpointError`: a
  checkpoint is missing, unreadable or does not fit;
* `ConfigError` (here: `run_config` and `distributed` raise it): config
  values that cannot be used;
* `workdir_lock.WorkdirLocked`, `train.TrainingDiverged`,
  `plotting.PlotError`, `programs.cli.UsageError`.

Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
  """A problem with the user's input, said in whole sentences."""


class ConfigError(UserError, ValueError):
  """One or more config values cannot be used (one line each)."""
