"""FIRE minimisation to inherent structures, and its cache."""

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.physics import inherent_structures
from glassy_jax.physics import kob_andersen
from glassy_jax.simulation import lammps_runtime


def _liquid(seed, n=343):
  """A Kob-Andersen configuration at density 1.2: a jittered lattice, so
  no pair starts inside the repulsive core."""
  rng = np.random.default_rng(seed)
  side = round(n ** (1 / 3))
  box = np.full(3, (side ** 3 / 1.2) ** (1 / 3))
  grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1)
  positions = (grid.reshape(-1, 3) + 0.5 + rng.normal(0, 0.1, (side ** 3, 3))
               ) * box / side
  types = (rng.permutation(side ** 3) < 0.2 * side ** 3).astype(np.int32)
  return positions, types, box


def test_forces_at_the_minimum_are_below_tolerance():
  positions, types, box = _liquid(0)
  fire = inherent_structures.Fire(force_tolerance=1e-6)
  minimum = inherent_structures.minimise(positions, types, box, fire)
  # An independent force computation (numpy pair sums).
  forces = kob_andersen.forces(minimum.positions, types, box)
  assert np.linalg.norm(forces, axis=1).max() < 1e-6
  energy = kob_andersen.particle_energies(minimum.positions, types, box).sum()
  np.testing.assert_allclose(minimum.energy, energy, rtol=1e-12)
  assert energy < kob_andersen.particle_energies(positions, types, box).sum()


def test_energy_equals_lammps_minimisers():
  if not lammps_runtime.available():
    pytest.skip("LAMMPS is not installed (the test extra has it)")
  positions, types, box = _liquid(1)
  ours = inherent_structures.minimise(positions, types, box)

  def lammps_minimum(start):
    """LAMMPS's energy and largest force component after its conjugate
    gradient from `start`."""
    lmp = lammps_runtime.new_lammps()
    lmp.commands_list([
        "units lj", "atom_style atomic", "boundary p p p",
        f"region box block 0 {box[0]} 0 {box[1]} 0 {box[2]}",
        "create_box 2 box"])
    for (x, y, z), t in zip(np.mod(start, box), types):
      lmp.command(f"create_atoms {t + 1} single {x} {y} {z} units box")
    lmp.commands_list(kob_andersen.lammps_potential_commands() + [
        "thermo_style custom step pe fmax", "min_style cg",
        "minimize 0.0 1e-10 100000 1000000"])
    result = lmp.get_thermo("pe") * len(types), lmp.get_thermo("fmax")
    lmp.close()
    return result

  # From our minimum shaken by 1e-5, LAMMPS comes back to the same energy:
  # ours is a minimum of LAMMPS's potential too. (Shaken by 1e-3, a soft
  # mode of this 343-particle glass can lead to a neighbouring minimum.)
  shaken = ours.positions + np.random.default_rng(0).normal(
      0, 1e-5, positions.shape)
  energy, max_component = lammps_minimum(shaken)
  np.testing.assert_allclose(ours.energy, energy, rtol=1e-10)
  assert max_component < 1e-6


def test_minimisation_is_cached_by_content(tmp_path, monkeypatch):
  positions, types, box = _liquid(2)
  snapshot = data.Snapshot(positions, types, box, None, "x")
  first = inherent_structures.inherent_snapshot(snapshot, str(tmp_path))

  def refuse(*args, **kwargs):
    raise AssertionError("minimised again")

  monkeypatch.setattr(inherent_structures, "minimise", refuse)
  again = inherent_structures.inherent_snapshot(snapshot, str(tmp_path))
  np.testing.assert_array_equal(again.positions, first.positions)
  moved = snapshot._replace(positions=positions + 0.01)
  with pytest.raises(AssertionError, match="minimised again"):
    inherent_structures.inherent_snapshot(moved, str(tmp_path))


def test_inherent_positions_carried_by_the_file_are_used(tmp_path,
                                                         monkeypatch):
  positions, types, box = _liquid(3)
  given = positions + 0.05
  snapshot = data.Snapshot(positions, types, box, None, "x",
                           inherent_positions=given)
  monkeypatch.setattr(inherent_structures, "minimise", None)
  used = inherent_structures.inherent_snapshot(snapshot, str(tmp_path))
  np.testing.assert_array_equal(used.positions, given)


def test_unconverged_minimisation_is_one_line():
  positions, types, box = _liquid(4)
  fire = inherent_structures.Fire(max_steps=5, chunk_steps=5)
  with pytest.raises(data.DataError, match=r"FIRE did not reach \|F\| < 1e-06 "
                     "in 5 steps"):
    inherent_structures.minimise(positions, types, box, fire)
