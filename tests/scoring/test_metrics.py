"""Loss and scores against numpy."""

import numpy as np

from glassy_jax.scoring import metrics as metrics_lib


def test_masked_squared_error_sum():
  rng = np.random.default_rng(0)
  predictions, targets = rng.normal(size=50), rng.normal(size=50)
  mask = rng.random(50) < 0.5
  sse, count = metrics_lib.masked_squared_error_sum(predictions, targets,
                                                    mask)
  np.testing.assert_allclose(
      sse, np.sum((predictions[mask] - targets[mask]) ** 2), rtol=1e-5)
  assert count == mask.sum()


def test_pearson_agrees_with_numpy():
  rng = np.random.default_rng(1)
  x = rng.normal(size=1000)
  y = 0.3 * x + rng.normal(size=1000)
  np.testing.assert_allclose(metrics_lib.pearson(x, y),
                             np.corrcoef(x, y)[0, 1], rtol=1e-10)
  assert np.isnan(metrics_lib.pearson(np.ones(5), np.arange(5.0)))


def test_score_split_agrees_with_numpy():
  rng = np.random.default_rng(3)
  types = [(rng.random(n) < 0.2).astype(int) for n in (50, 80, 65)]
  targets = [rng.normal(size=len(t)) for t in types]
  predictions = [0.5 * y + rng.normal(size=len(y)) for y in targets]
  summary = metrics_lib.score_split(predictions, targets, types)
  per_graph = [np.corrcoef(p[t == 0], y[t == 0])[0, 1]
               for p, y, t in zip(predictions, targets, types)]
  np.testing.assert_allclose(summary["pearson_a"], np.mean(per_graph))
  np.testing.assert_allclose(summary["pearson_a_std"], np.std(per_graph))
  pooled = np.corrcoef(
      np.concatenate([p[t == 0] for p, t in zip(predictions, types)]),
      np.concatenate([y[t == 0] for y, t in zip(targets, types)]))[0, 1]
  np.testing.assert_allclose(summary["pooled_pearson_a"], pooled)
  assert not np.isclose(pooled, summary["pearson_a"])
  np.testing.assert_allclose(summary["l1_a"], np.mean(
      [np.abs(p - y)[t == 0].mean()
       for p, y, t in zip(predictions, targets, types)]))
  # Each process's rows joined by `gather`: two identical shards score as one.
  doubled = metrics_lib.score_split(
      predictions, targets, types,
      gather=lambda rows: np.concatenate([rows, rows]))
  np.testing.assert_allclose(doubled["pearson_a"], summary["pearson_a"])
  np.testing.assert_allclose(doubled["pooled_pearson_a"], pooled)


def test_masked_squared_error_sum_per_time_index():
  """A joint model's [n_node, K]: one sum per column, one count."""
  rng = np.random.default_rng(4)
  predictions, targets = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
  mask = rng.random(50) < 0.5
  sse, count = metrics_lib.masked_squared_error_sum(predictions, targets,
                                                    mask)
  np.testing.assert_allclose(
      sse, np.sum((predictions[mask] - targets[mask]) ** 2, axis=0),
      rtol=1e-5)
  assert sse.shape == (3,) and count == mask.sum()


def test_score_time_indices_scores_each_column_and_their_mean():
  rng = np.random.default_rng(5)
  types = [(rng.random(n) < 0.2).astype(int) for n in (50, 80)]
  targets = [rng.normal(size=(len(t), 2)) for t in types]
  predictions = [y * (0.2, 0.9) + rng.normal(size=y.shape) for y in targets]
  summary = metrics_lib.score_time_indices(predictions, targets, types,
                                           (3, 7))
  columns = [metrics_lib.score_split([p[:, k] for p in predictions],
                                     [y[:, k] for y in targets], types)
             for k in range(2)]
  for key in columns[0]:
    assert summary[f"{key}/t3"] == columns[0][key]
    assert summary[f"{key}/t7"] == columns[1][key]
    assert summary[key] == np.mean([columns[0][key], columns[1][key]])
  assert summary["pearson_a/t7"] > summary["pearson_a/t3"]
