"""Self intermediate scattering function, partial structure factor, time indices.

Fs(q, t) = < (1/3) sum_{a in x,y,z} cos(q dr_a(t)) >, the isotropic average over
the three box axes, as usual in LAMMPS-based KA work (and exact for the
displacement component along each axis); the tests compare it with the sinc
form <sin(q |dr|) / (q |dr|)>. Displacements are of unwrapped
coordinates. DeepMind's `time_indices` are the first sampled times where the
ensemble-averaged Fs of A particles drops below each `is_value`.
"""

from typing import Sequence, Tuple

import numpy as np

IS_VALUES = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, float(np.exp(-1)))


def self_scattering(displacements: np.ndarray, q: float) -> np.ndarray:
  """Fs from displacements [..., N, 3]: mean over particles and axes of cos(q d)."""
  return np.cos(q * np.asarray(displacements)).mean(axis=(-1, -2))


def structure_factor(positions: np.ndarray, box: np.ndarray,
                     q_max: float = 12.0, bin_width: float = 0.1
                     ) -> Tuple[np.ndarray, np.ndarray]:
  """S(q) = |sum_j exp(i q.r_j)|^2 / n on all reciprocal-lattice q, binned by |q|.

  Exact lattice vectors q = 2 pi (nx/Lx, ny/Ly, nz/Lz) keep it free of
  box-edge artefacts; the sum factorises over axes, so it is one matrix
  product per system. Returns (bin centres, S) for bins with vectors in them.
  """
  positions = np.asarray(positions, np.float64)
  box = np.asarray(box, np.float64)
  n_max = np.floor(q_max * box / (2 * np.pi)).astype(int)
  phases = []
  for axis in range(3):
    ns = np.arange(-n_max[axis], n_max[axis] + 1)
    phases.append((ns, np.exp(1j * 2 * np.pi / box[axis]
                              * positions[:, axis:axis + 1] * ns[None, :])))
  (nx, ex), (ny, ey), (nz, ez) = phases
  exy = (ex[:, :, None] * ey[:, None, :]).reshape(len(positions), -1)
  rho = (exy.T @ ez).reshape(len(nx), len(ny), len(nz))
  s = np.abs(rho) ** 2 / len(positions)
  qx, qy, qz = np.meshgrid(2 * np.pi * nx / box[0], 2 * np.pi * ny / box[1],
                           2 * np.pi * nz / box[2], indexing="ij")
  q = np.sqrt(qx ** 2 + qy ** 2 + qz ** 2)
  keep = (q > 0) & (q <= q_max)
  bins = np.floor(q[keep] / bin_width).astype(int)
  counts = np.bincount(bins)
  sums = np.bincount(bins, weights=s[keep])
  filled = counts > 0
  centres = (np.arange(len(counts)) + 0.5) * bin_width
  return centres[filled], sums[filled] / counts[filled]


def first_peak(q: np.ndarray, s: np.ndarray, q_min: float = 4.0,
               half_width: float = 0.6) -> float:
  """The first peak of S(q) above `q_min` (excludes the q -> 0 region).

  A parabola fitted to the bins within `half_width` of the highest one: the
  peak is broad, so a lone bin's statistical noise would move a plain argmax.
  """
  sel = q >= q_min
  q, s = q[sel], s[sel]
  top = q[np.argmax(s)]
  near = np.abs(q - top) <= half_width
  if near.sum() < 3:
    return float(top)
  a, b, _ = np.polyfit(q[near], s[near], 2)
  return float(-b / (2 * a)) if a < 0 else float(top)


def time_indices(fs: Sequence[float],
                 is_values: Sequence[float] = IS_VALUES) -> list:
  """First index where `fs` is below each value (ValueError if never)."""
  fs = np.asarray(fs)
  indices = []
  for value in is_values:
    below = np.nonzero(fs < value)[0]
    if not len(below):
      raise ValueError(f"Fs never drops below {value:.3f} "
                       f"(minimum {fs.min():.3f}): run longer")
    indices.append(int(below[0]))
  return indices


def log_spaced_steps(max_step: int, ratio: float = 1.1) -> np.ndarray:
  """Step numbers 0, 1, 2, ... then growing by `ratio`, as DeepMind's `time`."""
  steps = [0]
  while steps[-1] < max_step:
    steps.append(min(max_step, max(steps[-1] + 1,
                                   int(round(steps[-1] * ratio)))))
  return np.asarray(steps, dtype=np.int64)
