"""Physical baselines: what simple structure alone says about propensity.

A network's correlation means little without yardsticks. Each baseline is
fit on DIR/train and scored on DIR/test through `metrics.score_split`, in
the rows of `glassy_jax.scoring.tables` (`model`: the baseline's name), so its rows
join a checkpoint's (`glassy_jax.programs.evaluate --baselines` adds
them; `glassy_jax.programs.baselines` prints them alone):

* `epot`: each particle's Kob-Andersen potential energy.
* `density`: the number of neighbours within 1.5 sigma, per volume.
* `radial_ridge`: ridge regression (`glassy_jax.scoring.ridge`) on each particle's
  radial histograms of A and of B neighbours, fit on training A particles,
  its penalty chosen on the last training files held out.
* `coarse_ridge`, `coarse_ridge_inherent`: the same ridge on the radial
  histograms and potential energy together with their averages over
  neighbours within each length of `model_inputs.LONG_TIME_SCALES`
  (`structure_features.coarse_grain`), of the thermal configuration or of
  its inherent structure (`glassy_jax.physics.inherent_structures`, cached).
* `coarse_ridge_relaxation`: `coarse_ridge_inherent`'s descriptors and each
  particle's relaxation distance (thermal to inherent structure),
  coarse-grained alike: what `configs/long_time.py` starts from.

`epot` and `density` are single features: their sign is chosen on the
training split, and their L1 and L2 are NaN (they are not propensities).
Features depend on structure only, so each file is read and featurised once
and only the targets change with the time index.
"""

import dataclasses
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from glassy_jax import progress as progress_lib
from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.network import model_inputs
from glassy_jax.physics import structure_features
from glassy_jax.scoring import ridge
from glassy_jax.scoring import tables

_UNCALIBRATED = ("l1_a", "l1_a_std", "l2_a", "l2_a_std")
# The coarse-grained descriptors the long-time recipe feeds its network.
_COARSE = model_inputs.InputSpec(descriptors="coarse")

Predictor = Callable[[np.ndarray], np.ndarray]


# ------------------------------------------------------------------ features
def coarse_thermal(snapshot: data.Snapshot) -> np.ndarray:
  """Coarse-grained descriptors of the thermal configuration."""
  return model_inputs.descriptors(snapshot, _COARSE)


def coarse_inherent(snapshot: data.Snapshot) -> np.ndarray:
  """Coarse-grained descriptors of the inherent structure."""
  return model_inputs.descriptors(snapshot, dataclasses.replace(
      _COARSE, inherent_structures=True))


def coarse_relaxation(snapshot: data.Snapshot) -> np.ndarray:
  """`coarse_inherent`'s columns and the coarse-grained relaxation
  distance."""
  return model_inputs.descriptors(snapshot, dataclasses.replace(
      _COARSE, descriptors="coarse_relaxation"))


# ------------------------------------------------------------------- fitting
def choose_sign(features: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                types: Sequence[np.ndarray]) -> float:
  """+1 or -1, whichever makes the mean Pearson r (A) over files positive."""
  return -1.0 if ridge.mean_pearson_a(features, targets, types) < 0 else 1.0


def fit_sign(features: Sequence[np.ndarray], targets: Sequence[np.ndarray],
             types: Sequence[np.ndarray]) -> Predictor:
  """The feature itself, signed on the training files, as the prediction."""
  sign = choose_sign(features, targets, types)
  return lambda feature: sign * feature


def fit_radial_ridge(features: Sequence[np.ndarray],
                     targets: Sequence[np.ndarray],
                     types: Sequence[np.ndarray]) -> Predictor:
  """The held-out ridge on radial histograms, predicting A and B alike."""
  return ridge.fit_held_out_ridge(features, targets, types).predict


class Baseline(NamedTuple):
  """Per-particle features of a snapshot, and how a predictor is fit on the
  training files' (features, targets, types). `calibrated`: predictions are
  propensities, so L1 and L2 mean something."""
  features: Callable[[data.Snapshot], np.ndarray]
  fit: Callable[[Sequence[np.ndarray], Sequence[np.ndarray],
                 Sequence[np.ndarray]], Predictor]
  calibrated: bool


BASELINES = {
    "epot": Baseline(structure_features.potential_energy, fit_sign,
                     calibrated=False),
    "density": Baseline(structure_features.local_density, fit_sign,
                        calibrated=False),
    "radial_ridge": Baseline(structure_features.radial_histograms,
                             fit_radial_ridge, calibrated=True),
    "coarse_ridge": Baseline(coarse_thermal, fit_radial_ridge,
                             calibrated=True),
    "coarse_ridge_inherent": Baseline(coarse_inherent, fit_radial_ridge,
                                      calibrated=True),
    "coarse_ridge_relaxation": Baseline(coarse_relaxation, fit_radial_ridge,
                                        calibrated=True),
}
# What `glassy-baselines` runs unless named: seconds each. The coarse_ridge
# rows coarse-grain (and the inherent and relaxation ones first minimise)
# every file: minutes cold, then read from the cache; their costs are on
# the docs' baselines page.
DEFAULT_BASELINES = ("epot", "density", "radial_ridge")


# ---------------------------------------------------------------- evaluation
def evaluate_baselines(directory: str, names: Sequence[str] = tuple(BASELINES),
                       time_indices: Optional[Sequence[int]] = None,
                       split: str = "test", max_files: Optional[int] = None,
                       progress: bool = False) -> List[Dict[str, Any]]:
  """Fit on `directory/train`, scored on `directory/split`: one row per
  baseline and time index (keys: `tables.COLUMNS`, `model` the baseline).

  `time_indices=None` means every index the first file has targets for;
  `max_files` caps each split.
  """
  names = list(dict.fromkeys(names))
  known = ", ".join(BASELINES)
  if not names:
    raise data.DataError(f"no baseline given (known: {known})")
  for name in names:
    if name not in BASELINES:
      raise data.DataError(f"unknown baseline '{name}' (known: {known})")
  train_paths = layouts.list_files(directory, "train", max_files)
  test_paths = layouts.list_files(directory, split, max_files)
  # Targets first: a bad time index fails before any feature is computed.
  files = tables.read_scored_files(train_paths + test_paths, time_indices,
                                   progress)
  if time_indices is None:
    time_indices = files[0].time_indices
  # Minimisation and coarse-graining take seconds a file: a bar per baseline.
  features = {name: [BASELINES[name].features(f.snapshot)
                     for f in progress_lib.bar(files, desc=name, unit="file",
                                               delay=2, disable=not progress)]
              for name in names}
  train, test = files[:len(train_paths)], files[len(train_paths):]
  rows = []
  for name in names:
    baseline = BASELINES[name]
    train_features = features[name][:len(train)]
    for column, time_index in enumerate(time_indices):
      predict = baseline.fit(train_features,
                             [f.targets[column] for f in train],
                             [f.snapshot.types for f in train])
      row = tables.score_row(
          name, directory, time_index, column, test,
          [predict(x) for x in features[name][len(train):]])
      if not baseline.calibrated:
        row.update(dict.fromkeys(_UNCALIBRATED, float("nan")))
      rows.append(row)
  return rows
