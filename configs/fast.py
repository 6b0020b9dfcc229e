"""A variant of Bapst et al. that learns in minutes, not 10^5 steps.

DeepMind's network and training (`configs/bapst.py`) with these departures,
each a named option (measurements in BUILD_NOTES.md, "Learning speed"):

* edge features: the raw vector plus a Gaussian radial basis of |r| per
  sender type (`model.edge_features = "vector_rbf"`);
* node features: the type plus rotation-invariant sums of learned radial
  functions times edge vectors and tensors (`model.angular_channels`);
* neighbour sums scaled to neighbour means (`model.aggregation_scale`);
* standardised targets; Adam at 1e-3 with warm-up and cosine decay.

Its first layers differ in shape from DeepMind's, so the published weights
do not load into it. Presets as in `configs/bapst.py`.
"""

import ml_collections

from glassy_jax.configs import bapst


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = bapst.variant_config(preset)
  config.model.edge_features = "vector_rbf"
  config.model.angular_channels = 8
  config.model.aggregation_scale = 1 / 41  # ~41 edges per node at cutoff 2.
  config.data.standardize_targets = True
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "cosine"
  config.optimizer.warmup_steps = 20
  if preset == "demo":
    # 240 steps (15 epochs of the 16 demo graphs); wall time in
    # BUILD_NOTES.md, "Learning speed".
    config.train.eval_every = 40
    config.train.checkpoint_every = 40
  elif not preset:
    config.train.num_epochs = 200
  return config
