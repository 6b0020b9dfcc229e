"""A recipe for the slow dynamics (structural relaxation time, tau_alpha).

At low temperature the propensity at tau_alpha follows the structure of a
particle's surroundings over several diameters, seen best in the inherent
structure (BUILD_NOTES.md, "Slow dynamics"). configs/fast.py's network and
training with these named departures, each measured on a validation split
of Shiba et al.'s T = 0.44 training files (preset `validation`):

* graphs from the inherent structures (`data.inherent_structures`): each
  configuration quenched by FIRE, once, cached;
* coarse-grained radial and energy descriptors of the inherent structure,
  and each particle's relaxation distance (thermal to inherent structure)
  coarse-grained alike, as node inputs
  (`data.descriptors = "coarse_relaxation"`, `model.node_descriptors`),
  standardised with the training statistics;
* a linear readout of the descriptors added to the output, started at the
  ridge fit with the decoder's last layer at zero
  (`model.descriptor_readout`): the network starts where the coarse-grained
  ridge (`glassy_jax.scoring.baselines`: coarse_ridge_relaxation) ends;
* two message-passing steps, a learning rate of 1e-4 with cosine decay and
  weight decay, 200 steps: on the validation split the network then stays
  above the ridge it starts from; faster learning overfits 8 files.

Presets:
* "" (default): all training files, the fixed length above; best.npz is
  the last state (`train.select_best = False`): nothing is chosen on the
  test split, which is only watched.
* `validation`: the last 2 training files are held out; the run evaluates
  and keeps its best checkpoint on them and scores the test split once.
* `demo`: the bundled demo data (T = 0.64), one joint model of every time
  index (below).
* `test`: a few steps (tests).

Apply and evaluate take plain thermal snapshots: the checkpoint records the
inputs, and they are rebuilt (minimised, coarse-grained) on the fly.
"""

import ml_collections

from glassy_jax.configs import fast
from glassy_jax.formats import data
from glassy_jax.network import model_inputs


def get_config(preset: str = "") -> ml_collections.ConfigDict:
  if preset not in ("", "validation", "demo", "test"):
    raise ValueError(f"unknown preset {preset!r} (known: validation, demo, "
                     "test)")
  config = fast.get_config("" if preset == "validation" else preset)
  config.data.time_index = 9
  config.data.inherent_structures = True
  config.data.descriptors = "coarse_relaxation"
  config.model.node_descriptors = model_inputs.InputSpec(
      descriptors="coarse_relaxation").num_descriptors
  config.model.descriptor_readout = True
  config.model.num_steps = 2
  config.model.angular_channels = 0
  config.optimizer.learning_rate = 1e-4
  config.optimizer.weight_decay = 1e-4
  config.train.num_epochs = 0
  config.train.num_steps = 200
  config.train.eval_every = 25
  config.train.checkpoint_every = 25
  config.train.log_every = 10
  config.train.select_best = False
  if preset == "demo":
    # One joint model of the ten time indices of the bundled T = 0.64 data:
    # descriptors of the thermal structure (the shortest times live there),
    # of the inherent structure and the relaxation distance side by side,
    # edges from the thermal structure, the readout started at each
    # index's ridge fit (chosen on a validation split: BUILD_NOTES.md).
    config.data.time_indices = tuple(range(data.NUM_TIME_INDICES))
    config.model.decoder_sizes = (64, 64, data.NUM_TIME_INDICES)
    config.data.inherent_structures = False
    config.data.descriptors = "coarse_both_relaxation"
    config.model.node_descriptors = model_inputs.InputSpec(
        descriptors="coarse_both_relaxation").num_descriptors
  elif preset == "validation":
    config.data.validation_files = 2
    config.train.select_best = True
  elif preset == "test":
    config.train.num_steps = 6
    config.train.eval_every = 3
    config.train.checkpoint_every = 3
    config.data.validation_files = 1
    config.train.select_best = True
    config.data.max_train_files = 3
  return config
