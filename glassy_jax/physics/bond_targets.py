"""BOTAN's bond target: how far apart each neighbour pair moves.

Shiba et al. (BOTAN, J. Chem. Phys. 158, 084503 (2023)) train their graph
network on two targets: each particle's propensity and, per edge, the change
of the pair's distance, |r_ij(t)| - |r_ij(0)| averaged over the
isoconfigurational runs. Relative motion is what structural relaxation is
made of (bonds break), and an edge target gives many more labels per
configuration than the N propensities; they call it essential at long times.
Here it is an auxiliary loss on an edge head (`models.BapstNetwork`,
`model.bond_head`; weight `train.bond_target_weight`), computed once on the
host for the pairs of the input graph, from the thermal configuration and
the runs' displacements (`data.Snapshot.displacements`).
"""

import numpy as np

from glassy_jax.formats import data as data_lib
from glassy_jax.physics import graphs


def bond_change(snapshot: data_lib.Snapshot, senders: np.ndarray,
                receivers: np.ndarray) -> np.ndarray:
  """[E] float32 mean over runs of |r_ij(t)| - |r_ij(0)| for the pairs
  (senders, receivers); 0 for a particle paired with itself.

  r_ij(0) is the minimum-image vector of the thermal configuration and
  r_ij(t) = r_ij(0) + u_j - u_i with the runs' unwrapped displacements u, so
  a pair is followed through any number of box crossings.
  """
  if snapshot.displacements is None:
    raise data_lib.DataError(
        f"{snapshot.name}: bond targets need the runs' displacements "
        "(read the snapshot with with_runs=True)")
  start = graphs.minimum_image(
      snapshot.positions[receivers] - snapshot.positions[senders],
      snapshot.box)
  change = np.zeros(len(senders), np.float64)
  for run in snapshot.displacements:  # One run at a time: [E, 3] in memory.
    moved = start + (run[receivers] - run[senders]).astype(np.float64)
    change += np.linalg.norm(moved, axis=-1)
  change /= len(snapshot.displacements)
  change -= np.linalg.norm(start, axis=-1)  # Exactly 0 where i == j.
  return change.astype(np.float32)


def pair_mask(senders: np.ndarray, receivers: np.ndarray) -> np.ndarray:
  """[E] bool: the edges that carry a bond target (not i with itself, and
  not padding, whose edges join the padding node to itself)."""
  return np.asarray(senders) != np.asarray(receivers)
