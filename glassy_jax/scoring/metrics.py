"""Loss and evaluation metrics, always restricted by a mask.

The mask selects real (non-padding) particles of the type scored: DeepMind
trains and reports on type-A particles only; B is reported separately.
"""

from typing import Callable, Dict, Optional, Sequence

import jax.numpy as jnp
import numpy as np


def masked_squared_error_sum(predictions, targets, mask):
  """(sum of squared errors over masked nodes, number of masked nodes).

  Returned as a pair so data-parallel steps can sum both across devices and
  divide once: the same loss as one device holding the whole batch.
  Predictions and targets [n_node, K] (a joint multi-time model) give one
  sum per column, [K]; `mask` is [n_node].
  """
  weights = mask.astype(predictions.dtype)
  per_node = weights.reshape(weights.shape + (1,) * (predictions.ndim - 1))
  return (jnp.sum(per_node * (predictions - targets) ** 2, axis=0),
          jnp.sum(weights))


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


def score_split(predictions: Sequence[np.ndarray],
                targets: Sequence[np.ndarray], types: Sequence[np.ndarray],
                gather: Optional[Callable[[np.ndarray], np.ndarray]] = None
                ) -> Dict[str, float]:
  """The metrics of a split, from per-graph arrays: mean and standard
  deviation over graphs of every `graph_metrics` entry, and
  `pooled_pearson_a`, one correlation over all A particles of the split (the
  TER 2023 report's metric).

  Training-time evaluation and `glassy_jax.inference.evaluate` both score through
  here. When each process holds a shard of the split, `gather`
  (`distributed.allgather_rows`) joins the rows of all processes.
  """
  gather = gather or (lambda rows: rows)
  per_graph = [graph_metrics(p, y, t)
               for p, y, t in zip(predictions, targets, types)]
  keys = list(per_graph[0])
  rows = gather(np.array([[m[k] for k in keys] for m in per_graph],
                         np.float64))
  summary = {}
  for column, key in enumerate(keys):
    summary[key] = float(np.nanmean(rows[:, column]))
    summary[key + "_std"] = float(np.nanstd(rows[:, column]))
  pooled = [gather(np.concatenate([a[t == 0] for a, t in zip(arrays, types)]))
            for arrays in (predictions, targets)]
  summary["pooled_pearson_a"] = pearson(*pooled)
  return summary


def score_time_indices(predictions: Sequence[np.ndarray],
                       targets: Sequence[np.ndarray],
                       types: Sequence[np.ndarray],
                       time_indices: Sequence[int],
                       gather: Optional[Callable[[np.ndarray], np.ndarray]]
                       = None) -> Dict[str, float]:
  """`score_split` of each column k of [N, K] per-graph arrays (a joint
  multi-time model), keyed `KEY/t{time_indices[k]}`, and under the plain
  keys the mean over the indices: what selects a joint run's best
  checkpoint, and where plots find a run's metrics whatever its kind."""
  per_index = [score_split([p[:, k] for p in predictions],
                           [y[:, k] for y in targets], types, gather)
               for k in range(len(time_indices))]
  summary = {key: float(np.mean([scores[key] for scores in per_index]))
             for key in per_index[0]}
  for index, scores in zip(time_indices, per_index):
    summary.update({f"{key}/t{index}": value for key, value in scores.items()})
  return summary
