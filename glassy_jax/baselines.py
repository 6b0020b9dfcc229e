"""Physical baselines: what simple structure alone says about propensity.

  python -m glassy_jax.baselines --data=DIR [--time_indices=0,9]
      [--baselines=epot,density,radial_ridge,coarse_ridge,...]
      [--output=PREFIX] [--max_files=N]

A network's correlation means little without yardsticks. Each baseline is
fit on DIR/train and scored on DIR/test through `metrics.score_split`, in
the rows of `glassy_jax.tables` (`model`: the baseline's name), so its rows
join a checkpoint's (`glassy_jax.evaluate --baselines` adds them):

* `epot`: each particle's Kob-Andersen potential energy.
* `density`: the number of neighbours within 1.5 sigma, per volume.
* `radial_ridge`: ridge regression on each particle's radial histograms of
  A and of B neighbours, fit on training A particles, its penalty chosen on
  the last training files held out.
* `coarse_ridge`, `coarse_ridge_inherent`: the same ridge on the radial
  histograms and potential energy together with their averages over
  neighbours within each length of `model_inputs.LONG_TIME_SCALES`
  (`structure_features.coarse_grain`), of the thermal configuration or of
  its inherent structure (`glassy_jax.inherent_structures`, cached).

`epot` and `density` are single features: their sign is chosen on the
training split, and their L1 and L2 are NaN (they are not propensities).
Features depend on structure only, so each file is read and featurised once
and only the targets change with the time index. The Markdown table is
printed; `--output=PREFIX` also writes `PREFIX.md` and `PREFIX.csv`.
"""

import dataclasses
import os
import warnings
from typing import (Any, Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple)

from absl import flags
import numpy as np
from tqdm import tqdm

from glassy_jax import cli
from glassy_jax import data
from glassy_jax import layouts
from glassy_jax import metrics
from glassy_jax import model_inputs
from glassy_jax import structure_features
from glassy_jax import tables

PENALTIES = tuple(10.0 ** np.arange(-3, 4))
HELD_OUT_FRACTION = 0.25
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


# ------------------------------------------------------------------- fitting
def mean_pearson_a(predictions: Sequence[np.ndarray],
                   targets: Sequence[np.ndarray],
                   types: Sequence[np.ndarray]) -> float:
  """Mean over files of Pearson r on A particles: the reported metric."""
  with warnings.catch_warnings():
    # Files with fewer than 2 B particles give NaN for B, unused here.
    warnings.simplefilter("ignore", RuntimeWarning)
    return metrics.score_split(predictions, targets, types)["pearson_a"]


def choose_sign(features: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                types: Sequence[np.ndarray]) -> float:
  """+1 or -1, whichever makes the mean Pearson r (A) over files positive."""
  return -1.0 if mean_pearson_a(features, targets, types) < 0 else 1.0


def fit_sign(features: Sequence[np.ndarray], targets: Sequence[np.ndarray],
             types: Sequence[np.ndarray]) -> Predictor:
  """The feature itself, signed on the training files, as the prediction."""
  sign = choose_sign(features, targets, types)
  return lambda feature: sign * feature


class Ridge(NamedTuple):
  """A linear model on standardised features."""
  mean: np.ndarray
  scale: np.ndarray
  weights: np.ndarray
  intercept: float
  penalty: float

  def predict(self, features: np.ndarray) -> np.ndarray:
    standardised = (features - self.mean) / self.scale
    return self.intercept + standardised @ self.weights


def fit_ridge(features: np.ndarray, targets: np.ndarray,
              penalties: Sequence[float]) -> List[Ridge]:
  """Per penalty, the minimiser of mean squared error + penalty |w|^2 on
  standardised features (closed form; one Gram matrix for all penalties)."""
  targets = np.asarray(targets, np.float64)
  mean = features.mean(axis=0)
  scale = features.std(axis=0)
  scale[scale == 0] = 1.0  # Shells no pair reaches stay zero.
  standardised = (features - mean) / scale
  gram = standardised.T @ standardised / len(targets)
  moment = standardised.T @ (targets - targets.mean()) / len(targets)
  identity = np.eye(len(gram))
  return [Ridge(mean, scale, np.linalg.solve(gram + penalty * identity,
                                             moment),
                float(targets.mean()), float(penalty))
          for penalty in penalties]


def _a_particles(features: Sequence[np.ndarray],
                 targets: Sequence[np.ndarray],
                 types: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
  """The A rows of all files, stacked: what the ridge is fit on."""
  return (np.concatenate([f[t == 0] for f, t in zip(features, types)]),
          np.concatenate([y[t == 0] for y, t in zip(targets, types)]))


def fit_held_out_ridge(features: Sequence[np.ndarray],
                       targets: Sequence[np.ndarray],
                       types: Sequence[np.ndarray],
                       penalties: Sequence[float] = PENALTIES,
                       held_out_fraction: float = HELD_OUT_FRACTION) -> Ridge:
  """Ridge on the A particles of all files, with the penalty whose fit on
  the first files scores best (mean Pearson r, A) on the last
  `held_out_fraction` of them (at least one file, and one left to fit)."""
  if len(features) < 2:
    raise data.DataError("radial_ridge needs at least 2 training files "
                         "(one is held out to choose the penalty)")
  held_out = min(max(1, int(round(held_out_fraction * len(features)))),
                 len(features) - 1)
  fitted = len(features) - held_out
  candidates = fit_ridge(*_a_particles(features[:fitted], targets[:fitted],
                                       types[:fitted]), penalties)
  scores = [mean_pearson_a([model.predict(f) for f in features[fitted:]],
                           targets[fitted:], types[fitted:])
            for model in candidates]
  best = penalties[int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))]
  return fit_ridge(*_a_particles(features, targets, types), [best])[0]


def fit_radial_ridge(features: Sequence[np.ndarray],
                     targets: Sequence[np.ndarray],
                     types: Sequence[np.ndarray]) -> Predictor:
  """The held-out ridge on radial histograms, predicting A and B alike."""
  return fit_held_out_ridge(features, targets, types).predict


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
}


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
  features = {name: [BASELINES[name].features(f.snapshot) for f in tqdm(
      files, desc=name, unit="file", delay=2, disable=not progress)]
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


# ------------------------------------------------------------------------ CLI
def _define_flags() -> None:
  """Flags exist only when run as a program: importers define their own."""
  flags.DEFINE_string("data", None, "Dataset directory: fit on DIR/train, "
                      "score on DIR/test.", required=True)
  flags.DEFINE_list("baselines", list(BASELINES),
                    f"Comma-separated baselines out of {', '.join(BASELINES)}.")
  flags.DEFINE_list("time_indices", None,
                    "Comma-separated time indices (default: all).")
  flags.DEFINE_string("output", None, "Write PREFIX.md and PREFIX.csv.")
  flags.DEFINE_integer("max_files", 0,
                       "At most this many files per split (0 = all).",
                       lower_bound=0)


def main(args: flags.FlagValues) -> None:
  if not os.path.isdir(args.data):
    raise data.DataError(f"{args.data}: no such directory")
  rows = evaluate_baselines(args.data, args.baselines,
                            cli.parse_indices(args.time_indices),
                            max_files=args.max_files or None, progress=True)
  title = (f"Baselines fit on {os.path.join(args.data, 'train')}, scored on "
           f"{os.path.join(args.data, 'test')} ({rows[0]['num_files']} "
           "files)")
  tables.report(rows, title, args.output)


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
