"""Per-particle structural descriptors, computed on the host with numpy.

The physical baselines fit them (`glassy_jax.scoring.baselines`) and the long-time
recipe feeds them to the network as node inputs (`glassy_jax.network.model_inputs`):

* local: each particle's radial histograms of A and of B neighbours and its
  Kob-Andersen potential energy (`local_descriptors`);
* coarse-grained: the local descriptors averaged over the neighbours within
  each of several lengths L, weighted exp(-d / (L / 3)), the particle itself
  included (`coarse_grain`). Slow dynamics is collective: a particle's
  propensity at the structural relaxation time follows the structure of its
  surroundings over several particle diameters (Boattini et al., PRL 127,
  088007 (2021); GlassMLP, Jung et al., PRL 130, 238202 (2023));
* the relaxation distance: how far each particle moves when its
  configuration is quenched to its inherent structure (`relaxation_distance`),
  an input of EIGNN (Jiang et al., "Enhancing glassy dynamics prediction by
  incorporating displacement from initial to equilibrium states").
"""

from typing import Sequence

import numpy as np
from scipy import sparse

from glassy_jax.formats import data
from glassy_jax.physics import graphs
from glassy_jax.physics import kob_andersen

DENSITY_CUTOFF = 1.5  # In sigma_AA: the first coordination shell of A.
# Shells from RADIAL_MIN to RADIAL_MAX (sigma_AA), RADIAL_BINS per type.
RADIAL_MIN, RADIAL_MAX, RADIAL_BINS = 0.5, 2.5, 40
# Coarse-graining lengths (sigma_AA): from the first shell to ~5 diameters.
COARSE_SCALES = (1.5, 2.5, 3.5, 5.0)


def potential_energy(snapshot: data.Snapshot) -> np.ndarray:
  """[N] each particle's share of the Kob-Andersen potential energy."""
  return kob_andersen.particle_energies(snapshot.positions, snapshot.types,
                                        snapshot.box)


def local_density(snapshot: data.Snapshot,
                  cutoff: float = DENSITY_CUTOFF) -> np.ndarray:
  """[N] neighbours closer than `cutoff` (minimum image) per unit volume."""
  _, receivers = graphs.neighbour_pairs(snapshot.positions, snapshot.box,
                                        cutoff)
  # neighbour_pairs pairs each particle with itself once.
  neighbours = np.bincount(receivers, minlength=len(snapshot.types)) - 1
  return neighbours / (4 / 3 * np.pi * cutoff ** 3)


def radial_histograms(snapshot: data.Snapshot, minimum: float = RADIAL_MIN,
                      maximum: float = RADIAL_MAX,
                      bins: int = RADIAL_BINS) -> np.ndarray:
  """[N, 2 * bins] each particle's neighbours counted in `bins` equal shells
  from `minimum` to `maximum`: A neighbours, then B neighbours."""
  senders, receivers = graphs.neighbour_pairs(snapshot.positions,
                                              snapshot.box, maximum)
  distance = np.linalg.norm(graphs.minimum_image(
      snapshot.positions[senders] - snapshot.positions[receivers],
      snapshot.box), axis=1)
  shell = np.floor((distance - minimum) / (maximum - minimum) * bins)
  inside = (shell >= 0) & (shell < bins) & (senders != receivers)
  column = (snapshot.types[senders[inside]] * bins
            + shell[inside].astype(np.int64))
  n = len(snapshot.types)
  counts = np.bincount(receivers[inside] * 2 * bins + column,
                       minlength=n * 2 * bins)
  return counts.reshape(n, 2 * bins).astype(np.float64)


def local_descriptors(snapshot: data.Snapshot) -> np.ndarray:
  """[N, 2 * RADIAL_BINS + 1]: radial histograms, then potential energy."""
  return np.concatenate([radial_histograms(snapshot),
                         potential_energy(snapshot)[:, None]], axis=1)


def relaxation_distance(thermal: data.Snapshot,
                        inherent: data.Snapshot) -> np.ndarray:
  """[N] |r_inherent - r_thermal| per particle (minimum image): particles
  far from their minimum sit in strained, soon rearranging surroundings."""
  return np.linalg.norm(graphs.minimum_image(
      inherent.positions - thermal.positions, thermal.box), axis=1)


def coarse_grain(features: np.ndarray, positions: np.ndarray, box: np.ndarray,
                 scales: Sequence[float] = COARSE_SCALES) -> np.ndarray:
  """[N, F] -> [N, F * (1 + len(scales))]: the features, then per length L
  their average over the particles within L, weighted exp(-d / (L / 3))."""
  n = len(features)
  blocks = [features]
  for scale in scales:
    senders, receivers = graphs.neighbour_pairs(positions, box, scale)
    distance = np.linalg.norm(graphs.minimum_image(
        positions[senders] - positions[receivers], box), axis=1)
    weights = sparse.csr_matrix(
        (np.exp(-distance / (scale / 3)), (receivers, senders)), shape=(n, n))
    total = np.asarray(weights.sum(axis=1))  # [N, 1]; >= 1 (self-pair).
    blocks.append(weights @ features / total)
  return np.concatenate(blocks, axis=1)


def coarse_descriptors(snapshot: data.Snapshot,
                       scales: Sequence[float] = COARSE_SCALES) -> np.ndarray:
  """[N, (2 * RADIAL_BINS + 1) * (1 + len(scales))]: local descriptors and
  their coarse-grained averages."""
  return coarse_grain(local_descriptors(snapshot), snapshot.positions,
                      snapshot.box, scales)


def coarse_descriptor_count(scales: Sequence[float] = COARSE_SCALES) -> int:
  """Columns of `coarse_descriptors`."""
  return (2 * RADIAL_BINS + 1) * (1 + len(scales))
