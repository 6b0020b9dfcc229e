"""Ridge regression of propensity on per-particle features.

The linear yardstick of the field: the physical baselines fit it on
structural descriptors (`glassy_jax.scoring.baselines`), and training starts the
long-time network's descriptor readout at its fit (`train.start_from_ridge`).
Fits are on A particles, in closed form on standardised features, with the
penalty chosen on held-out files by the metric the project reports (mean
over files of Pearson r on A particles).
"""

import warnings
from typing import List, NamedTuple, Sequence, Tuple

import numpy as np

from glassy_jax.formats import data
from glassy_jax.scoring import metrics

# Half decades: a finer grid than decades helps on held-out training files
# (BUILD_NOTES.md, "The relaxation distance").
PENALTIES = tuple(10.0 ** np.arange(-3, 3.01, 0.5))
HELD_OUT_FRACTION = 0.25


def mean_pearson_a(predictions: Sequence[np.ndarray],
                   targets: Sequence[np.ndarray],
                   types: Sequence[np.ndarray]) -> float:
  """Mean over files of Pearson r on A particles: the reported metric."""
  with warnings.catch_warnings():
    # Files with fewer than 2 B particles give NaN for B, unused here.
    warnings.simplefilter("ignore", RuntimeWarning)
    return metrics.score_split(predictions, targets, types)["pearson_a"]


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
    raise data.DataError("a ridge fit needs at least 2 training files "
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
