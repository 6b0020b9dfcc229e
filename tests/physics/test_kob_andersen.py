"""KA parameters and pair terms: energy, pressure, forces by hand and vs LAMMPS."""

import os

import numpy as np
import pytest

from glassy_jax.physics import kob_andersen as ka
from glassy_jax.simulation import lammps_runtime
from glassy_jax.simulation import simulate


def _lj(r, eps, sig):
  return 4 * eps * ((sig / r) ** 12 - (sig / r) ** 6)


def potential_energy(positions, types, box):
  """Per particle, shifted LJ, minimum image (LAMMPS's `pe`)."""
  total = sum(p.energy.sum() for p in ka.pair_terms(positions, types, box))
  return float(total / len(positions))


def virial_pressure(positions, types, box):
  """Configurational part of the pressure: sum r.f / (3 V)."""
  total = sum(p.virial.sum() for p in ka.pair_terms(positions, types, box))
  return float(total / (3.0 * np.prod(np.asarray(box, np.float64))))


def pressure(positions, types, box, velocities):
  """Total pressure: sum m v^2 / (3 V) (mass 1) plus the virial part."""
  volume = np.prod(np.asarray(box, np.float64))
  kinetic = np.sum(np.asarray(velocities, np.float64) ** 2) / (3.0 * volume)
  return float(kinetic + virial_pressure(positions, types, box))


def test_mixture_matches_deepmind_system():
  m = ka.Mixture()
  assert (m.num_a, m.num_b) == (3277, 819)
  np.testing.assert_allclose(m.box_length ** 3 * 1.2, 4096, rtol=1e-12)
  table = ka.pair_table()
  assert table[(1, 2)] == (1.5, 0.8, 2.0)
  assert table[(2, 2)] == (0.5, 0.88, 2.2)


def test_forces_are_minus_the_energy_gradient():
  rng = np.random.default_rng(0)
  box = np.full(3, 5.0)
  side = np.arange(4) * 1.25 + 0.1
  positions = np.stack(np.meshgrid(side, side, side), -1).reshape(-1, 3)
  positions += rng.normal(0, 0.08, positions.shape)
  types = (rng.random(len(positions)) < 0.2).astype(int)
  force = ka.forces(positions, types, box)
  assert force.shape == (64, 3)
  np.testing.assert_allclose(force.sum(0), 0, atol=1e-9)  # Newton's third law.
  h = 1e-6
  for particle, axis in [(0, 0), (17, 1), (40, 2), (63, 0)]:
    plus, minus = positions.copy(), positions.copy()
    plus[particle, axis] += h
    minus[particle, axis] -= h
    gradient = len(positions) * (potential_energy(plus, types, box) -
                                 potential_energy(minus, types, box)) / (
                                     2 * h)
    np.testing.assert_allclose(force[particle, axis], -gradient, rtol=1e-5,
                               atol=1e-5)


def test_energy_and_virial_of_pairs_by_hand():
  box = np.full(3, 10.0)
  r_a = 1.1
  # An AA pair across the periodic boundary (minimum image), and a BB pair
  # at 2.1 (inside its 2.2 cutoff) far from the AA pair.
  positions = np.array([[0.2, 5, 5], [10.2 - r_a, 5, 5],
                        [5, 1, 1], [5, 3.1, 1]])
  types = np.array([0, 0, 1, 1])
  energy = (_lj(r_a, 1.0, 1.0) - _lj(2.5, 1.0, 1.0)
            + _lj(2.1, 0.5, 0.88) - _lj(2.2, 0.5, 0.88))
  np.testing.assert_allclose(potential_energy(positions, types, box),
                             energy / 4, rtol=1e-12)
  # r.f = -r dV/dr = 24 eps (2 (s/r)^12 - (s/r)^6).
  rf = (24 * (2 * r_a ** -12 - r_a ** -6)
        + 24 * 0.5 * (2 * (0.88 / 2.1) ** 12 - (0.88 / 2.1) ** 6))
  np.testing.assert_allclose(virial_pressure(positions, types, box),
                             rf / 3000, rtol=1e-12)
  # An AB pair at 2.1 is beyond its 2.0 cutoff: no energy at all.
  ab_pair = np.array([[1.0, 1, 1], [3.1, 1, 1]])
  assert potential_energy(ab_pair, np.array([0, 1]), box) == 0.0
  ab_pair[1, 0] = 2.9  # r = 1.9: inside.
  assert potential_energy(ab_pair, np.array([0, 1]), box) < 0


def _lammps_state(directory, threads):
  """A KA liquid made by LAMMPS: its energy, pressures and configuration."""
  if not lammps_runtime.available():
    pytest.skip("LAMMPS cannot be imported (pip install 'lammps[mpi]')")
  m = ka.Mixture(num_particles=300)
  length = m.box_length
  with simulate.Lammps(os.path.join(directory, "state"), threads) as lmp:
    lmp.commands(["units lj", "atom_style atomic", "atom_modify map array",
                  f"region box block 0 {length} 0 {length} 0 {length}",
                  "create_box 2 box",
                  f"create_atoms 1 random {m.num_a} 11 NULL",
                  f"create_atoms 2 random {m.num_b} 12 NULL"])
    lmp.commands(ka.lammps_potential_commands())
    lmp.commands(["minimize 1e-4 1e-6 1000 10000",
                  "velocity all create 1.0 5 dist gaussian mom yes",
                  "fix integrator all nve", "timestep 0.003", "run 300",
                  "compute virial all pressure NULL virial",
                  "thermo_style custom step pe press c_virial", "run 0"])
    state = {"pe": lmp.lmp.get_thermo("pe"),
             "press": lmp.lmp.get_thermo("press"),
             "virial": lmp.lmp.extract_compute("virial", 0, 0),
             "x": lmp.unwrapped_positions(), "v": lmp.velocities(),
             "types": lmp.types(), "box": lmp.box()}
  return state


@pytest.fixture(scope="module")
def lammps_state(tmp_path_factory):
  return _lammps_state(str(tmp_path_factory.mktemp("ka")), threads=1)


def test_energy_per_particle_matches_lammps(lammps_state):
  s = lammps_state
  assert s["pe"] < -5.0  # A dense liquid, not an empty or exploded box.
  np.testing.assert_allclose(
      potential_energy(s["x"], s["types"], s["box"]), s["pe"], rtol=1e-10)


def test_pressure_matches_lammps(lammps_state):
  s = lammps_state
  np.testing.assert_allclose(
      virial_pressure(s["x"], s["types"], s["box"]), s["virial"],
      rtol=1e-10)
  np.testing.assert_allclose(
      pressure(s["x"], s["types"], s["box"], s["v"]), s["press"],
      rtol=1e-10)
  # Unwrapped coordinates give the same answer (minimum image).
  shifted = s["x"] + s["box"] * (np.arange(len(s["x"]))[:, None] % 3)
  np.testing.assert_allclose(
      virial_pressure(shifted, s["types"], s["box"]), s["virial"],
      rtol=1e-10)


def test_openmp_styles_give_the_same_energy(tmp_path):
  s = _lammps_state(str(tmp_path), threads=2)
  with open(tmp_path / "state.in") as f:
    assert "suffix omp" in f.read()
  np.testing.assert_allclose(
      potential_energy(s["x"], s["types"], s["box"]), s["pe"], rtol=1e-10)
