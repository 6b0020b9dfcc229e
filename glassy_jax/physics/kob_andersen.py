"""The Kob-Andersen 80:20 Lennard-Jones mixture: parameters, LAMMPS input, pair terms.

Parameters follow Kob & Andersen (1995) and `docs/specification.md` ("The
Kob-Andersen system"): type A (LAMMPS type 1, dataset type 0) and B (LAMMPS
type 2, dataset type 1), mass 1, eps/sigma AA 1.0/1.0, AB 1.5/0.8,
BB 0.5/0.88, each pair cut at 2.5 sigma_ab.

Energy convention: the pair potential is shifted to zero at the cutoff
(`pair_modify shift yes`), as in most KA simulations, so the energy is continuous.
The shift changes energies only; forces and hence the virial pressure are
those of the truncated, unshifted potential, and no tail correction is added.
`pair_terms` gives exactly these quantities pair by pair (the tests check
them against LAMMPS's energy and pressure).
"""

import dataclasses
from typing import Dict, Iterator, NamedTuple, Tuple

import numpy as np

# (epsilon, sigma) per (type_i, type_j), dataset types 0 = A, 1 = B.
EPSILON = np.array([[1.0, 1.5], [1.5, 0.5]])
SIGMA = np.array([[1.0, 0.8], [0.8, 0.88]])
CUTOFF_IN_SIGMA = 2.5


@dataclasses.dataclass(frozen=True)
class Mixture:
  """Size and composition of a KA system."""
  num_particles: int = 4096
  fraction_a: float = 0.8
  density: float = 1.2

  @property
  def num_a(self) -> int:
    """Type-A count, rounded (4096 -> 3277 A + 819 B, as DeepMind's data)."""
    return int(round(self.fraction_a * self.num_particles))

  @property
  def num_b(self) -> int:
    return self.num_particles - self.num_a

  @property
  def box_length(self) -> float:
    return (self.num_particles / self.density) ** (1.0 / 3.0)


def pair_table() -> Dict[Tuple[int, int], Tuple[float, float, float]]:
  """(epsilon, sigma, cutoff) per LAMMPS type pair (1-based)."""
  return {(i + 1, j + 1): (EPSILON[i, j], SIGMA[i, j],
                           CUTOFF_IN_SIGMA * SIGMA[i, j])
          for i in range(2) for j in range(i, 2)}


def lammps_potential_commands() -> list:
  """LAMMPS commands that define masses and the KA pair potential."""
  commands = ["mass * 1.0",
              f"pair_style lj/cut {CUTOFF_IN_SIGMA * SIGMA.max():.6g}"]
  for (i, j), (eps, sig, cut) in pair_table().items():
    commands.append(f"pair_coeff {i} {j} {eps:.6g} {sig:.6g} {cut:.6g}")
  commands += ["pair_modify shift yes",
               "neighbor 0.3 bin",
               "neigh_modify every 1 delay 0 check yes"]
  return commands


class Pairs(NamedTuple):
  """Pairs i < j inside the cutoff: indices, minimum-image r_j - r_i,
  shifted pair energy and r.f = -r dV/dr."""
  i: np.ndarray
  j: np.ndarray
  vectors: np.ndarray
  energy: np.ndarray
  virial: np.ndarray


def pair_terms(positions, types, box, chunk=256) -> Iterator[Pairs]:
  """The interacting pairs, chunk of rows i by chunk (O(chunk N) memory)."""
  positions = np.asarray(positions, np.float64)
  types = np.asarray(types, np.int64)
  box = np.asarray(box, np.float64)
  n = len(positions)
  cut2_table = (CUTOFF_IN_SIGMA * SIGMA) ** 2
  for start in range(0, n, chunk):
    rows = np.arange(start, min(start + chunk, n))
    d = positions[None, :, :] - positions[rows, None, :]
    d -= box * np.round(d / box)
    r2 = np.sum(d * d, axis=-1)
    ti, tj = types[rows][:, None], types[None, :]
    mask = (np.arange(n)[None, :] > rows[:, None]) & (r2 < cut2_table[ti, tj])
    i, j = np.nonzero(mask)
    r2 = r2[mask]
    eps = np.broadcast_to(EPSILON[ti, tj], mask.shape)[mask]
    sig2 = np.broadcast_to(SIGMA[ti, tj] ** 2, mask.shape)[mask]
    cut2 = np.broadcast_to(cut2_table[ti, tj], mask.shape)[mask]
    s6 = (sig2 / r2) ** 3
    s6c = (sig2 / cut2) ** 3
    energy = 4 * eps * (s6 * s6 - s6) - 4 * eps * (s6c * s6c - s6c)
    virial = 24 * eps * (2 * s6 * s6 - s6)  # r . f = -r dV/dr.
    yield Pairs(rows[i], j, d[mask], energy, virial)


def forces(positions, types, box) -> np.ndarray:
  """[N, 3] force on each particle. Over a short time t a particle moves by
  v t + F t^2 / 2, so |F| sets much of its shortest-time propensity (how
  much: BUILD_NOTES.md, "Learning speed")."""
  total = np.zeros((len(positions), 3))
  for pairs in pair_terms(positions, types, box):
    # f_j = (r.f / r^2) (r_j - r_i), and f_i = -f_j.
    f = (pairs.virial / np.sum(pairs.vectors ** 2, axis=-1))[:, None] * (
        pairs.vectors)
    np.add.at(total, pairs.j, f)
    np.add.at(total, pairs.i, -f)
  return total


def particle_energies(positions, types, box) -> np.ndarray:
  """[N] potential energy of each particle, half of each pair energy to each
  partner (LAMMPS's pe/atom), so they sum to the total. A particle deep in
  its cage has a low energy and tends to move late: a propensity baseline."""
  total = np.zeros(len(positions))
  for pairs in pair_terms(positions, types, box):
    np.add.at(total, pairs.i, pairs.energy / 2)
    np.add.at(total, pairs.j, pairs.energy / 2)
  return total
