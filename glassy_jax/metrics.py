"""Loss and evaluation metrics, always restricted by a mask.

The mask selects real (non-padding) particles of the type scored: DeepMind
trains and reports on type-A particles only; B is reported separately.
"""

from typing import Dict, Iterable, Mapping

import jax.numpy as jnp
import numpy as np


def masked_squared_error_sum(predictions, targets, mask):
  """(sum of squared errors over masked nodes, number of masked nodes).

  Returned as a pair so data-parallel steps can sum both across devices and
  divide once: the same loss as one device holding the whole batch.
  """
  weights = mask.astype(predictions.dtype)
  return jnp.sum(weights * (predictions - targets) ** 2), jnp.sum(weights)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
  """Pearson correlation of two 1-D samples (float64 accumulation); NaN
  when either side is constant or has fewer than two values."""
  if len(x) < 2:
    return float("nan")
  x = np.asarray(x, np.float64) - np.mean(x)
  y = np.asarray(y, np.float64) - np.mean(y)
  denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
  return float(np.sum(x * y) / denominator) if denominator > 0 else float("nan")


def graph_metrics(predictions: np.ndarray, targets: np.ndarray,
                  types: np.ndarray) -> Dict[str, float]:
  """Pearson, L1 and L2 (MSE) on A particles, and Pearson on B, of one graph."""
  is_a, is_b = types == 0, types == 1
  error = predictions[is_a] - targets[is_a]
  return {
      "pearson_a": pearson(predictions[is_a], targets[is_a]),
      "l1_a": float(np.mean(np.abs(error))),
      "l2_a": float(np.mean(error ** 2)),
      "pearson_b": (pearson(predictions[is_b], targets[is_b])
                    if is_b.sum() > 1 else float("nan")),
  }


def summarize(per_graph: Iterable[Mapping[str, float]],
              pooled_predictions: np.ndarray = None,
              pooled_targets: np.ndarray = None,
              pooled_types: np.ndarray = None) -> Dict[str, float]:
  """Mean and standard deviation over graphs of every metric.

  With pooled arrays also `pooled_pearson_a`: one correlation over all A
  particles of the split (the TER 2023 report's metric).
  """
  per_graph = list(per_graph)
  summary = {}
  for key in per_graph[0]:
    values = np.array([m[key] for m in per_graph], np.float64)
    summary[key] = float(np.nanmean(values))
    summary[key + "_std"] = float(np.nanstd(values))
  if pooled_predictions is not None:
    is_a = pooled_types == 0
    summary["pooled_pearson_a"] = pearson(pooled_predictions[is_a],
                                          pooled_targets[is_a])
  return summary
