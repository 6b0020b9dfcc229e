"""Ridge regression: closed form on standardised features, penalty chosen
on held-out files."""

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.scoring import metrics
from glassy_jax.scoring import ridge


def linear_files(seed, num_files=8, rows=400, noise=0.1):
  """Features of very different scales, targets a known linear function of
  them plus noise: (features, targets, types, weights)."""
  rng = np.random.default_rng(seed)
  weights = np.array([2.0, -1.0, 0.5, 0.0, 3.0])
  scales = np.array([1.0, 10.0, 0.1, 5.0, 2.0])
  features = [rng.normal(size=(rows, 5)) * scales for _ in range(num_files)]
  targets = [f @ weights + 3.0 + rng.normal(0, noise, rows)
             for f in features]
  types = [(rng.random(rows) < 0.2).astype(np.int32) for _ in features]
  return features, targets, types, weights


def test_ridge_without_penalty_is_least_squares():
  features, targets, _, _ = linear_files(0, num_files=1)
  model, = ridge.fit_ridge(features[0], targets[0], [0.0])
  design = np.column_stack([features[0], np.ones(len(targets[0]))])
  solution = np.linalg.lstsq(design, targets[0], rcond=None)[0]
  np.testing.assert_allclose(model.predict(features[0]), design @ solution,
                             rtol=1e-9, atol=1e-9)


def test_ridge_ignores_feature_units():
  """Standardised features: a column in other units, the same predictions."""
  features, targets, _, _ = linear_files(0, num_files=1)
  units = np.array([1.0, 100.0, 0.01, 1.0, 7.0])
  for penalty in (0.1, 10.0):
    model, = ridge.fit_ridge(features[0], targets[0], [penalty])
    rescaled, = ridge.fit_ridge(features[0] * units, targets[0], [penalty])
    np.testing.assert_allclose(rescaled.predict(features[0] * units),
                               model.predict(features[0]), rtol=1e-9)


def test_ridge_recovers_a_linear_target():
  features, targets, types, weights = linear_files(1)
  model = ridge.fit_held_out_ridge(features, targets, types)
  assert model.penalty in ridge.PENALTIES
  np.testing.assert_allclose(model.weights / model.scale, weights, atol=0.05)
  unseen, truth, unseen_types, _ = linear_files(2, num_files=2)
  r = ridge.mean_pearson_a([model.predict(f) for f in unseen], truth,
                           unseen_types)
  assert r > 0.999


def test_ridge_penalty_is_the_held_out_best_and_deterministic():
  """Few rows and many useless features: the held-out file (the last of 4)
  prefers a penalty inside the grid, not at either end."""
  rng = np.random.default_rng(2)
  features = [rng.normal(size=(40, 30)) for _ in range(4)]
  targets = [f[:, :5] @ np.array([1.0, 0.8, 0.6, 0.4, 0.2])
             + rng.normal(0, 1.0, 40) for f in features]
  types = [np.zeros(40, np.int32)] * 4
  model = ridge.fit_held_out_ridge(features, targets, types)
  candidates = ridge.fit_ridge(np.concatenate(features[:3]),
                               np.concatenate(targets[:3]), ridge.PENALTIES)
  held_out = [metrics.pearson(m.predict(features[3]), targets[3])
              for m in candidates]
  best = int(np.argmax(held_out))
  assert 0 < best < len(ridge.PENALTIES) - 1
  assert model.penalty == ridge.PENALTIES[best]
  again = ridge.fit_held_out_ridge(features, targets, types)
  assert again.penalty == model.penalty
  np.testing.assert_array_equal(again.weights, model.weights)


def test_ridge_needs_two_training_files():
  features, targets, types, _ = linear_files(4, num_files=1)
  with pytest.raises(data.DataError, match="at least 2 training files"):
    ridge.fit_held_out_ridge(features, targets, types)
