"""Fs, S(q) and time indices against cases worked out by hand."""

import numpy as np
import pytest

from glassy_jax.simulation import scattering


def isotropic_fs(displacements, q):
  """Fs from the spherical average: mean over particles of sinc(q |d| / pi)."""
  r = np.linalg.norm(np.asarray(displacements), axis=-1)
  return np.sinc(q * r / np.pi).mean(axis=-1)


def test_self_scattering_of_uniform_shift():
  d = np.zeros((50, 3))
  d[:, 0] = 0.3
  assert scattering.self_scattering(np.zeros((50, 3)), 7.25) == 1.0
  np.testing.assert_allclose(scattering.self_scattering(d, 7.25),
                             (np.cos(7.25 * 0.3) + 2) / 3, rtol=1e-12)
  # Leading axes are kept: one value per time.
  fs = scattering.self_scattering(np.stack([d * 0, d]), 7.25)
  assert fs.shape == (2,) and fs[0] == 1.0


def test_isotropic_fs_is_sinc():
  d = np.tile([[0.0, 0.3, 0.4]], (10, 1))  # |d| = 0.5.
  np.testing.assert_allclose(isotropic_fs(d, 2.0),
                             np.sin(1.0) / 1.0, rtol=1e-12)


def test_axis_average_matches_sinc_for_isotropic_displacements():
  rng = np.random.default_rng(0)
  d = rng.normal(size=(200000, 3)) * 0.2
  # Both forms equal exp(-q^2 sigma^2 / 2) for Gaussian displacements.
  expected = np.exp(-(7.25 * 0.2) ** 2 / 2)
  assert abs(scattering.self_scattering(d, 7.25) - expected) < 0.005
  assert abs(isotropic_fs(d, 7.25) - expected) < 0.005


def test_structure_factor_of_cubic_lattice_has_bragg_peak():
  # 4^3 simple cubic lattice, spacing 1: rho(q) = N on reciprocal vectors
  # 2 pi (h, k, l), zero on every other lattice vector of the 4-box.
  grid = np.arange(4.0)
  positions = np.stack(np.meshgrid(grid, grid, grid), -1).reshape(-1, 3) + 0.1
  q, s = scattering.structure_factor(positions, np.full(3, 4.0), q_max=7.0)
  bragg = np.argmin(np.abs(q - 2 * np.pi))
  assert abs(q[bragg] - 2 * np.pi) < 0.1
  np.testing.assert_allclose(s[bragg], 64.0, rtol=1e-9)
  others = np.delete(s, bragg)
  assert np.all(others < 1e-9)


def test_first_peak_smooths_noisy_bins():
  rng = np.random.default_rng(2)
  q = np.arange(0.05, 12, 0.1)
  s = 1 + 2 * np.exp(-(q - 7.25) ** 2 / 0.5) + 0.03 * rng.normal(size=len(q))
  s[q < 1] = 5.0  # A large q -> 0 value must be ignored.
  assert abs(scattering.first_peak(q, s) - 7.25) < 0.05


def test_structure_factor_of_ideal_gas_is_one():
  rng = np.random.default_rng(1)
  box = np.full(3, 10.0)
  q, s = scattering.structure_factor(rng.uniform(0, 10, (1000, 3)), box,
                                     q_max=10.0, bin_width=1.0)
  assert abs(s[q > 3].mean() - 1.0) < 0.05


def test_time_indices_are_first_crossings():
  fs = [1.0, 0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, 0.15, 0.05]
  assert scattering.time_indices(fs) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 7]
  # A value equal to the threshold is not below it.
  assert scattering.time_indices([1.0, 0.5, 0.4], [0.5]) == [2]
  with pytest.raises(ValueError, match="run longer"):
    scattering.time_indices([1.0, 0.5, 0.2])


def test_log_spaced_steps():
  steps = scattering.log_spaced_steps(1000, ratio=1.1)
  assert steps[0] == 0 and steps[-1] == 1000
  assert list(steps[:12]) == list(range(12))  # Linear at first, like DeepMind.
  assert np.all(np.diff(steps) > 0)
  grown = np.maximum(steps[:-1] + 1, np.round(steps[:-1] * 1.1))
  assert np.all(steps[1:] <= grown)
  assert 60 < len(steps) < 110
