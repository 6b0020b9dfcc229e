"""Systems from trajectory dumps, checked against a hand computation."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.simulation import build_system
from glassy_jax.simulation import scattering

N, L, NUM_TRAJ = 20, 10.0, 3
STEPS = [10 * 2 ** k for k in range(9)]


def _synthetic_set(tmp_path, wrapped):
  """An initial dump and 3 random-walk trajectories; returns known truth."""
  rng = np.random.default_rng(1)
  types = np.array([0] * 16 + [1] * 4)
  start = lammps_io.make_frame(rng.uniform(0, L, (N, 3)), types, [L] * 3,
                               unwrapped=False)
  initial = str(tmp_path / "initial.dump")
  lammps_io.write_dump(initial, start)
  variance = 0.002 * 2.0 ** np.arange(len(STEPS))  # Per axis, cumulative.
  increments = np.sqrt(np.diff(variance, prepend=0.0))
  displacements = np.cumsum(
      rng.normal(size=(NUM_TRAJ, len(STEPS), N, 3))
      * increments[None, :, None, None], axis=1)
  velocities = rng.normal(size=(NUM_TRAJ, N, 3))
  paths = []
  for t in range(NUM_TRAJ):
    at_start = start._replace(
        extra={"vx": velocities[t, :, 0], "vy": velocities[t, :, 1],
               "vz": velocities[t, :, 2]})
    frames = [at_start]
    for k, step in enumerate(STEPS):
      positions = start.positions + displacements[t, k]
      if wrapped:
        positions = np.mod(positions, L)
      frames.append(start._replace(timestep=step, positions=positions,
                                   unwrapped=not wrapped))
    paths.append(str(tmp_path / f"traj_{t}.dump"))
    lammps_io.write_dump(paths[-1], frames)
  return initial, paths, start, displacements, velocities


@pytest.mark.parametrize("wrapped", [False, True])
def test_builder_matches_hand_computation(tmp_path, wrapped):
  initial, paths, start, disp, velocities = _synthetic_set(tmp_path, wrapped)
  system, _ = build_system.build_system_from_dumps(initial, paths,
                                                temperature=0.44)
  is_a = start.types == 0
  fs = np.mean([[np.mean(np.cos(7.25 * d[is_a])) for d in per_traj]
                for per_traj in disp], axis=0)
  expected = [int(np.flatnonzero(fs < v)[0]) + 1
              for v in scattering.IS_VALUES]
  assert system["time_indices"] == expected
  np.testing.assert_allclose(system["is_values"], scattering.IS_VALUES)
  assert system["time"] == [0.0] + [s * 0.005 for s in STEPS]
  for i, index in enumerate(expected):
    hand = data.propensity(start.positions,
                           list(start.positions + disp[:, index - 1]))
    np.testing.assert_allclose(data.system_targets(system, i), hand,
                               rtol=1e-6)
  np.testing.assert_array_equal(system["trajectory_start_velocities"],
                                velocities)
  assert system["metadata"]["temperature"] == 0.44
  out = str(tmp_path / "aggregated_0.npz")
  data.write_system(out, system)
  assert data.load_system(out)["time_indices"] == expected


def test_builder_short_trajectories(tmp_path):
  initial, paths, _, _, _ = _synthetic_set(tmp_path, wrapped=False)
  for path in paths:  # Keep timestep 0 and the first 4 samples only.
    lammps_io.write_dump(path, lammps_io.read_dump(path)[:5])
  with pytest.raises(data.DataError, match=r"never below .*0\.1"):
    build_system.build_system_from_dumps(initial, paths)
  system, _ = build_system.build_system_from_dumps(initial, paths,
                                                allow_partial=True)
  assert 0 < len(system["time_indices"]) < 10
  assert data.num_targets(system) == len(system["is_values"])
  assert max(system["time_indices"]) <= 4


def test_builder_rejects_mismatched_trajectories(tmp_path):
  initial, paths, _, _, _ = _synthetic_set(tmp_path, wrapped=False)
  frames = lammps_io.read_dump(paths[1])
  lammps_io.write_dump(paths[1], [f._replace(timestep=f.timestep + 1)
                                  for f in frames])
  with pytest.raises(data.DataError, match="different cadences or clocks"):
    build_system.build_system_from_dumps(initial, paths)


def test_cli_build(tmp_path):
  initial, _, _, _, _ = _synthetic_set(tmp_path, wrapped=True)
  out = str(tmp_path / "aggregated_0.pickle")
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.build_system",
       f"--initial={initial}", f"--trajectories={tmp_path}/traj_*.dump",
       f"--output={out}", "--temperature=0.5"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  system = data.load_system(out)
  assert len(system["time_indices"]) == 10
  assert system["metadata"]["temperature"] == 0.5
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.build_system",
       f"--initial={initial}", f"--trajectories={tmp_path}/none_*",
       f"--output={out}"],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 1 and "no files match" in result.stderr
