"""Bapst et al. (2020), as DeepMind trained it (`../shared/FIDELITY.md`).

Presets after a colon: `configs/bapst.py:demo` trains the same model briefly
on the bundled demo dataset from scratch; `configs/bapst.py:finetune` starts
from DeepMind's published network (bundled, `t044_s09`) and trains it on the
demo data; `configs/bapst.py:test` runs a few steps (tests).
"""

import ml_collections

from glassy_jax import model_config
from glassy_jax import model_inputs


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # Data: DeepMind's layout, DIR/{train,test}/aggregated*. Unset = demo data.
  config.data = ml_collections.ConfigDict()
  config.data.directory = ""
  config.data.time_index = 9  # 0..9; 9 is IS = 1/e (tau_alpha).
  # A departure: one joint model for several indices, one decoder output
  # each (model.decoder_sizes[-1] = their number; configs/fast_all_times.py).
  # Empty: DeepMind's one model per data.time_index.
  config.data.time_indices = ()
  config.data.max_train_files = 0  # 0 = all.
  config.data.max_test_files = 0
  config.data.cutoff = 2.0
  # Departures for slow dynamics (configs/long_time.py, model_inputs.py):
  # graphs (and descriptors) from the inherent structures; coarse-grained
  # structural descriptors as node inputs ("coarse"; model.node_descriptors
  # must match their number) at these coarse-graining lengths.
  config.data.inherent_structures = False
  config.data.descriptors = ""
  config.data.coarse_scales = model_inputs.LONG_TIME_SCALES
  # > 0: the last this many training files are the validation split the run
  # evaluates on and picks its best checkpoint by; the test split is scored
  # once at the end. 0: DeepMind's evaluation on the test split.
  config.data.validation_files = 0
  config.data.standardize_targets = False
  # Size buckets: graphs whose node counts round up to the same multiple of
  # this share a padding budget (one compiled shape each); 0 = one bucket.
  config.data.bucket_nodes = 256

  # Model: DeepMind's network (`glassy_jax.model_config.ModelConfig`).
  config.model = model_config.ModelConfig().as_config_dict()

  # Optimisation.
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.learning_rate = 1e-4
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-8
  config.optimizer.clip_global_norm = 1.0  # 0 = no clipping.
  config.optimizer.weight_decay = 0.0  # A departure: > 0 is AdamW's decay.
  # A departure: model.descriptor_readout stays at its ridge start.
  config.optimizer.freeze_readout = False
  config.optimizer.schedule = "constant"  # Or "step" (StepLR), "cosine".
  config.optimizer.warmup_steps = 0  # Linear warm-up (cosine schedule).
  config.optimizer.step_epochs = 10  # StepLR period, in epochs.
  config.optimizer.step_gamma = 0.3

  # Training loop.
  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 1000
  config.train.num_steps = 0  # Overrides num_epochs when > 0.
  # > 0: stop (evaluate, checkpoint) after this many wall seconds.
  config.train.time_budget_s = 0.0
  config.train.graphs_per_device = 1  # Global batch = devices x this.
  config.train.augment_rotations = True  # Axis permutation and reflection.
  config.train.eval_every = 1000
  config.train.log_every = 100
  config.train.checkpoint_every = 1000
  config.train.keep_checkpoints = 3
  config.train.seed = 42
  # False (a departure): best.npz is the latest evaluated state, so that a
  # run on all training files picks nothing on the test split.
  config.train.select_best = True
  config.train.metric = "per_graph"  # Mean of per-graph Pearson; or "pooled".
  # Divergence: skip non-finite steps; past this many per log interval,
  # roll back to the last checkpoint with the learning rate scaled down.
  config.train.max_nonfinite_steps = 10
  config.train.rollback_lr_factor = 0.5
  config.train.max_rollbacks = 3
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
    # 16 training graphs of 4096 particles: 240 steps, ~8 minutes on 2 cores.
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
