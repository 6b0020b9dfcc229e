"""A graph convolutional network (Kipf & Welling), the seed report's baseline.

`glassy_jax/network/gcn.py`: node features only (the particle type), no distances
or directions, trained with the fast variant's optimiser and targets so
that the comparison with `configs/fast.py` is about the network alone.
Presets as in `configs/bapst.py` (not `finetune`: its layers are not
DeepMind's).
"""

import ml_collections

from glassy_jax.configs import fast


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = fast.get_config(preset)
  config.model.architecture = "gcn"
  config.model.num_steps = 3  # Convolutions.
  # Options of the Bapst network that the GCN does not read, back to their
  # defaults so that the checkpoint says what was trained.
  config.model.edge_features = "vector"
  config.model.angular_channels = 0
  config.model.aggregation_scale = 1.0
  return config
