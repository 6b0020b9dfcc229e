"""The seed's variant (TER 2023, PyTorch Geometric), as docs/specification.md
records it ("The seed's variant (TER 2023)").

One-hot node types; standardised targets; 7 processor steps with separate
weights updated in parallel (edges and nodes both from the previous step);
decoder Linear(64)-ReLU-Linear(1); no augmentation or clipping; 5 graphs per
step; Adam at 1e-4 with StepLR (10 epochs, gamma 0.3); the metric is one
Pearson correlation pooled over all A particles of the split.

The seed split 400 files 80/10/10 at random; here the split is the dataset's
own train/ and test/ folders (point `data.directory` at a layout made that
way). Presets as in `configs/bapst.py`.
"""

import ml_collections

from glassy_jax.configs import bapst


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = bapst.variant_config(preset)
  config.model.node_features = "one_hot"
  config.model.shared_weights = False
  config.model.update_order = "parallel"
  config.model.decoder_sizes = (64, 1)
  config.data.standardize_targets = True
  config.train.augment_rotations = False
  config.train.graphs_per_device = 5 if preset != "test" else 1
  config.train.metric = "pooled"
  config.optimizer.clip_global_norm = 0.0
  config.optimizer.schedule = "step"
  config.optimizer.step_epochs = 10
  config.optimizer.step_gamma = 0.3
  if not preset:
    config.train.num_epochs = 400
  return config
