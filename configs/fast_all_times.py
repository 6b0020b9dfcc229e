"""configs/fast.py's recipe as one joint model of every time index.

DeepMind trains one network per time index. Here one network predicts all
ten at once (`data.time_indices`), its decoder with one output per index;
the loss is the mean over indices of each one's mean squared error on A
particles, targets are standardised per index, and the test metric that
keeps the best checkpoint is the mean over indices (per-index metrics are
recorded as `KEY/t{index}`). Every other option is configs/fast.py's.
Presets as in configs/fast.py.
"""

import ml_collections

from glassy_jax.configs import fast
from glassy_jax.formats import data


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = fast.get_config(preset)
  config.data.time_indices = tuple(range(data.NUM_TIME_INDICES))
  config.model.decoder_sizes = (64, 64, data.NUM_TIME_INDICES)
  return config
