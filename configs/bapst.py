"""Bapst et al. (2020), as DeepMind trained it (`docs/specification.md`).

Presets after a colon: `configs/bapst.py:demo` trains the same model briefly
on the bundled demo dataset from scratch; `configs/bapst.py:finetune` starts
from DeepMind's published network (bundled, `t044_s09`) and trains it on the
demo data; `configs/bapst.py:test` runs a few steps (tests).
"""

import ml_collections

from glassy_jax.network import model_config
from glassy_jax.training import run_config


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  # DeepMind's data, network, optimisation and training loop: the defaults
  # of the typed sections (glassy_jax/training/run_config.py, model_config.py), where
  # every option is described. Data unset = the bundled demo data.
  config.data = run_config.DataConfig().as_config_dict()
  config.model = model_config.ModelConfig().as_config_dict()
  config.optimizer = run_config.OptimizerConfig().as_config_dict()
  config.train = run_config.TrainConfig().as_config_dict()
  config.init_from = ""  # A checkpoint to start from (e.g. a converted TF one).

  # Multi-host data parallelism (cluster/README.md). Unset fields are
  # detected by jax.distributed.initialize (SLURM, Open MPI, Cloud TPU).
  config.distributed = ml_collections.ConfigDict()
  config.distributed.enabled = False  # True: one process per host.
  config.distributed.coordinator_address = ""  # "host:port" of process 0.
  config.distributed.num_processes = 0  # 0 = detect.
  config.distributed.process_id = -1  # -1 = detect.
  config.distributed.local_device_ids = ""  # E.g. "0,1,2,3"; "" = detect.

  if preset == "demo":
    # 16 training graphs of 4096 particles: 240 steps (wall time in
    # BUILD_NOTES.md, "Demo training").
    config.train.num_epochs = 15
    config.train.eval_every = 80
    config.train.log_every = 10
    config.train.checkpoint_every = 80
    config.data.time_index = 0
  elif preset == "finetune":
    # DeepMind's T = 0.44 network, trained further on the demo's T = 0.64
    # data (same time index): 160 steps.
    config.init_from = "t044_s09"
    config.data.time_index = 0
    config.train.num_epochs = 10
    config.train.eval_every = 40
    config.train.log_every = 10
    config.train.checkpoint_every = 40
  elif preset == "test":
    config.train.num_steps = 6
    config.train.eval_every = 3
    config.train.log_every = 1
    config.train.checkpoint_every = 3
    config.data.max_train_files = 2
    config.data.max_test_files = 1
    config.data.time_index = 0
  elif preset:
    raise ValueError(f"unknown preset {preset!r} (known: demo, finetune, "
                     "test)")
  return config


def variant_config(preset: str = "") -> ml_collections.ConfigDict:
  """`get_config(preset)` as the base of a variant whose layers differ from
  DeepMind's: such a variant cannot start from the published weights."""
  if preset == "finetune":
    raise ValueError("unknown preset 'finetune' for this variant: DeepMind's "
                     "published weights fit configs/bapst.py only")
  return get_config(preset)
