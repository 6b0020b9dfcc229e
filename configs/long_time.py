"""A recipe for the slow dynamics (structural relaxation time, tau_alpha).

At low temperature the propensity at tau_alpha follows the structure of a
particle's surroundings over several diameters, seen best in the inherent
structure (BUILD_NOTES.md, "Slow dynamics"). configs/fast.py's network and
training with these named departures, each measured on a validation split
of Shiba et al.'s T = 0.44 training files:

* graphs from the inherent structures (`data.inherent_structures`): each
  configuration quenched by FIRE, once, cached;
* coarse-grained radial and energy descriptors of the inherent structure as
  node inputs (`data.descriptors = "coarse"`, `model.node_descriptors`),
  standardised with the training statistics: the network starts where the
  coarse-grained ridge (`glassy_jax.baselines`: coarse_ridge) ends;
* a linear readout of the descriptors added to the output, started at the
  ridge fit (`model.descriptor_readout`), the decoder's last layer at zero;
* the last 2 training files as a validation split that picks the best
  checkpoint (`data.validation_files`); the test split is scored once;
* fewer message-passing steps and weight decay, for 8 training files.

Apply and evaluate take plain thermal snapshots: the checkpoint records the
inputs, and they are rebuilt (minimised, coarse-grained) on the fly.
Presets: `demo` (the bundled demo data), `test` (a few steps, tests).
"""

import ml_collections

from configs import fast
from glassy_jax import model_inputs


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  config = fast.get_config(preset)
  config.data.time_index = 9
  config.data.inherent_structures = True
  config.data.descriptors = "coarse"
  config.model.node_descriptors = model_inputs.InputSpec(
      descriptors="coarse").num_descriptors
  config.model.descriptor_readout = True
  config.data.validation_files = 2
  config.model.num_steps = 2
  config.model.angular_channels = 0
  config.optimizer.weight_decay = 1e-4
  config.train.num_epochs = 0
  config.train.num_steps = 400
  config.train.eval_every = 50
  config.train.checkpoint_every = 50
  config.train.log_every = 10
  if preset == "test":
    config.train.num_steps = 6
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    config.data.validation_files = 1
    config.data.max_train_files = 3
  return config
