"""Physical baselines: features against brute-force loops, the ridge and the
sign rule on known answers, rows end to end, and the program's errors."""

import csv
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.network import model_inputs
from glassy_jax.physics import kob_andersen as ka
from glassy_jax.physics import structure_features
from glassy_jax.scoring import baselines
from glassy_jax.scoring import ridge
from glassy_jax.scoring import tables
import conftest
from conftest import REPO


def small_system(seed: int = 0) -> data.Snapshot:
  """60 particles of both types on a jittered lattice in a box of 6: wide
  enough for the 2.5 sigma cutoff under the minimum image."""
  rng = np.random.default_rng(seed)
  side = np.arange(4) * 1.5
  lattice = np.stack(np.meshgrid(side, side, side), -1).reshape(-1, 3)[:60]
  # Some particles sit across the boundary: the minimum image must matter.
  positions = lattice + rng.normal(0, 0.15, lattice.shape)
  types = np.zeros(60, np.int32)
  types[rng.choice(60, 12, replace=False)] = 1
  return data.Snapshot(positions, types, np.full(3, 6.0), None)


def pair_distances(snapshot):
  """[N, N] minimum-image distances, by a plain double loop."""
  n = len(snapshot.types)
  distance = np.zeros((n, n))
  for i, j in itertools.product(range(n), range(n)):
    d = snapshot.positions[j] - snapshot.positions[i]
    d -= snapshot.box * np.round(d / snapshot.box)
    distance[i, j] = np.sqrt(np.sum(d * d))
  return distance


def test_particle_energies_match_a_double_loop():
  snapshot = small_system()
  distance = pair_distances(snapshot)
  expected = np.zeros(60)
  for i, j in itertools.combinations(range(60), 2):
    a, b = snapshot.types[i], snapshot.types[j]
    eps, sigma = ka.EPSILON[a, b], ka.SIGMA[a, b]
    cutoff = ka.CUTOFF_IN_SIGMA * sigma
    if distance[i, j] < cutoff:
      energy = (4 * eps * ((sigma / distance[i, j]) ** 12
                           - (sigma / distance[i, j]) ** 6)
                - 4 * eps * ((sigma / cutoff) ** 12 - (sigma / cutoff) ** 6))
      expected[i] += energy / 2
      expected[j] += energy / 2
  energies = ka.particle_energies(snapshot.positions, snapshot.types,
                                  snapshot.box)
  assert energies.shape == (60,) and energies.dtype == np.float64
  assert np.ptp(energies) > 0.1  # Particles differ: the test can fail.
  np.testing.assert_allclose(energies, expected, rtol=0, atol=1e-10)
  total = sum(p.energy.sum() for p in ka.pair_terms(
      snapshot.positions, snapshot.types, snapshot.box))
  np.testing.assert_allclose(energies.sum(), total, rtol=1e-12)


def test_radial_histograms_match_a_brute_force_count():
  snapshot = small_system(1)
  distance = pair_distances(snapshot)
  edges = np.linspace(0.0, 2.5, 10)  # From 0: a particle is not its own.
  features = structure_features.radial_histograms(snapshot, 0.0, 2.5, 9)
  assert features.shape == (60, 18)
  for i in range(60):
    others = np.arange(60) != i
    for t in (0, 1):
      expected, _ = np.histogram(
          distance[i, others & (snapshot.types == t)], edges)
      np.testing.assert_array_equal(features[i, 9 * t:9 * (t + 1)], expected)
  assert features[:, :9].sum() > 0 and features[:, 9:].sum() > 0


def test_local_density_matches_a_brute_force_count():
  snapshot = small_system(2)
  distance = pair_distances(snapshot)
  counts = (distance < 1.7).sum(axis=1) - 1  # Not itself.
  np.testing.assert_allclose(structure_features.local_density(snapshot, 1.7),
                             counts / (4 / 3 * np.pi * 1.7 ** 3), rtol=1e-12)
  assert len(set(counts.tolist())) > 2


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_energy_sign_is_chosen_on_training_files(sign):
  rng = np.random.default_rng(5)
  snapshots = [small_system(seed) for seed in range(3)]
  energies = [structure_features.potential_energy(s) for s in snapshots]
  targets = [sign * e + rng.normal(0, 0.1 * e.std(), e.shape)
             for e in energies]
  types = [s.types for s in snapshots]
  assert baselines.choose_sign(energies, targets, types) == sign
  predict = baselines.fit_sign(energies, targets, types)
  r = ridge.mean_pearson_a([predict(e) for e in energies], targets, types)
  assert r > 0.9


_LOCAL = ("epot", "density", "radial_ridge")  # The coarse ones need L < box/2.


def test_rows_end_to_end(synthetic_dataset):
  rows = baselines.evaluate_baselines(synthetic_dataset, _LOCAL,
                                      time_indices=[0, 9])
  assert [(r["model"], r["time_index"]) for r in rows] == [
      (name, k) for name in _LOCAL for k in (0, 9)]
  assert all(set(r) == set(tables.COLUMNS) for r in rows)
  assert all(r["num_files"] == 2 and r["data"] == synthetic_dataset
             for r in rows)

  # The energy rows, recomputed: sign from the training files, then scored.
  train, test = [[data.to_snapshot(data.load_system(path), 9)
                  for path in layouts.list_files(synthetic_dataset, split)]
                 for split in ("train", "test")]
  sign = np.sign(np.mean([
      np.corrcoef(ka.particle_energies(s.positions, s.types, s.box)[
          s.types == 0], s.targets[s.types == 0])[0, 1] for s in train]))
  expected = np.mean([
      np.corrcoef(sign * ka.particle_energies(s.positions, s.types, s.box)[
          s.types == 0], s.targets[s.types == 0])[0, 1] for s in test])
  epot = rows[1]
  np.testing.assert_allclose(epot["pearson_a"], expected, rtol=1e-6)
  assert epot["pearson_a"] > 0 and np.isnan(epot["l1_a"])
  np.testing.assert_allclose(epot["time"], 100.0)
  np.testing.assert_allclose(epot["temperature"], 0.44)
  # The synthetic propensity grows with the B neighbours within 2.0, which
  # the radial histograms count: the ridge nearly reproduces it.
  ridge = rows[-1]
  assert ridge["pearson_a"] > 0.9 and np.isfinite(ridge["l1_a"])


def test_coarse_ridge_rows_thermal_and_inherent(tmp_path, monkeypatch):
  """Both coarse rows on 343-particle systems (box 6.6), at lengths below
  half the box; the inherent row minimises each file (cached)."""
  directory = conftest.write_synthetic_dataset(tmp_path, num_train=3,
                                               num_test=1, n=343)
  monkeypatch.setattr(baselines, "_COARSE", model_inputs.InputSpec(
      descriptors="coarse", coarse_scales=(1.0, 2.0)))
  names = ("radial_ridge", "coarse_ridge", "coarse_ridge_inherent",
           "coarse_ridge_relaxation")
  rows = baselines.evaluate_baselines(directory, names, time_indices=[9])
  assert [r["model"] for r in rows] == list(names)
  # The synthetic propensity is set by B neighbours within 2.0 of the
  # thermal structure: the thermal rows see it best.
  assert rows[1]["pearson_a"] > 0.8
  for row in rows[2:]:
    assert np.isfinite(row["pearson_a"]) and np.isfinite(row["l1_a"])


def _cli(*args):
  return subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.baselines", *args],
      cwd=REPO, capture_output=True, text=True, check=False)


def test_cli_prints_and_writes_tables(synthetic_dataset, tmp_path):
  prefix = tmp_path / "out" / "baselines"
  result = _cli(f"--data={synthetic_dataset}", "--time_indices=0,9",
                "--baselines=density,radial_ridge", f"--output={prefix}")
  assert result.returncode == 0, result.stderr
  assert "| radial_ridge |" in result.stdout
  with open(f"{prefix}.csv") as f:
    rows = list(csv.DictReader(f))
  assert tuple(rows[0]) == tables.COLUMNS
  assert [(r["model"], int(r["time_index"])) for r in rows] == [
      ("density", 0), ("density", 9), ("radial_ridge", 0),
      ("radial_ridge", 9)]
  assert os.path.getsize(f"{prefix}.md") > 0


@pytest.mark.parametrize("case, message", [
    ("baseline", "error: unknown baseline 'x' (known: epot, density, "
                 "radial_ridge, coarse_ridge, coarse_ridge_inherent, "
                 "coarse_ridge_relaxation)"),
    ("index", "time index 10 out of range"),
    ("empty", "no dataset files in"),
])
def test_cli_errors_are_one_line(synthetic_dataset, tmp_path, case, message):
  args = {"data": synthetic_dataset, "baselines": "density",
          "time_indices": "0"}
  if case == "baseline":
    args["baselines"] = "density,x"
  elif case == "index":
    args["time_indices"] = "0,10"
  else:
    args["data"] = tmp_path
  result = _cli(*[f"--{k}={v}" for k, v in args.items()])
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert [l for l in lines if l.startswith("error:")] == lines[-1:]
  assert message in lines[-1]
