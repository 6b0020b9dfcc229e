"""End-to-end LAMMPS pipeline on the `tiny` preset (about a minute on 2 cores)."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.simulation import lammps_runtime
from glassy_jax.simulation import scattering
from conftest import REPO, record_atomic_writes


if not lammps_runtime.available():
  pytest.skip("LAMMPS cannot be imported (pip install 'lammps[mpi]')",
              allow_module_level=True)

from glassy_jax.simulation import simulate  # pylint: disable=g-import-not-at-top,wrong-import-position

# Time order of the 10 indices: IS 0.9 ... 0.4, then 1/e, then 0.3, 0.2, 0.1.
TIME_ORDER = [0, 1, 2, 3, 4, 5, 9, 6, 7, 8]


def tiny_config():
  spec = importlib.util.spec_from_file_location(
      "simulate_ka", os.path.join(REPO, "configs", "simulate_ka.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("tiny")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  cfg = tiny_config()
  output = str(tmp_path_factory.mktemp("tiny"))
  simulate.generate(cfg, output)
  return cfg, output


def _files(output):
  return (sorted(layouts.list_files(output, "train"))
          + sorted(layouts.list_files(output, "test")))


def test_writes_deepmind_format(tiny):
  cfg, output = tiny
  assert len(layouts.list_files(output, "train")) == cfg.num_train
  assert len(layouts.list_files(output, "test")) == cfg.num_test
  for path in _files(output):
    system = data.load_system(path)
    assert set(system) == {
        "positions", "types", "box", "time", "time_indices", "is_values",
        "metadata", "trajectory_start_velocities",
        "trajectory_target_positions"}
    assert system["positions"].dtype == np.float64
    assert system["types"].dtype == np.int32
    assert np.sum(system["types"] == 0) == 205  # round(0.8 * 256).
    np.testing.assert_allclose(np.prod(system["box"]) * cfg.density, 256)
    assert np.all((system["positions"] >= 0)
                  & (system["positions"] < system["box"]))
    assert system["metadata"]["fluid"] == "Kob Andersen"
    assert system["metadata"]["temperature"] == cfg.temperature
    assert 3 < system["metadata"]["pressure"] < 15  # KA at rho 1.2, T 0.8.
    np.testing.assert_allclose(system["is_values"], scattering.IS_VALUES)
    assert len(system["time_indices"]) == 10
    assert len(system["trajectory_target_positions"]) == 10
    assert all(len(t) == cfg.num_trajectories
               for t in system["trajectory_target_positions"])
    times = np.asarray(system["time"])
    assert times[0] == 0 and np.all(np.diff(times) > 0)
    np.testing.assert_allclose(times[1], cfg.dt)


def test_time_indices_follow_fs_and_targets_grow(tiny):
  cfg, output = tiny
  for path in _files(output):
    system = data.load_system(path)
    indices = np.asarray(system["time_indices"])
    assert np.all(np.diff(indices[TIME_ORDER]) > 0)
    start = system["positions"]
    types = system["types"]
    for k, value in enumerate(system["is_values"]):
      runs = np.stack(system["trajectory_target_positions"][k]) - start
      fs = scattering.self_scattering(runs[:, types == 0], 7.25).mean()
      assert fs < value  # The ensemble Fs has dropped below the IS value...
    means = [data.system_targets(system, k)[types == 0].mean()
             for k in TIME_ORDER]
    assert np.all(np.diff(means) > 0)
    assert means[0] < 0.5 * means[-1]


def test_fs_decays_and_indices_are_first_crossings(tiny):
  _, output = tiny
  work = os.path.join(output, "work")
  for index in range(3):
    z = np.load(os.path.join(work, "ensembles", f"config_{index:03d}",
                             "fs.npz"))
    fs = z["fs"]
    assert fs[0] == 1.0 and fs[-1] < 0.1
    assert fs[len(fs) // 10] > 0.9 and fs[len(fs) // 2] < 0.9
    for i, value in zip(z["time_indices"], scattering.IS_VALUES):
      assert fs[i] < value <= fs[i - 1]  # ...and not one sample earlier.


def test_fresh_maxwell_boltzmann_velocities(tiny):
  cfg, output = tiny
  system = data.load_system(layouts.list_files(output, "train")[0])
  velocities = system["trajectory_start_velocities"]
  assert len(velocities) == cfg.num_trajectories
  assert not np.allclose(velocities[0], velocities[1])
  for v in velocities:
    np.testing.assert_allclose(v.sum(axis=0), 0, atol=1e-9)  # mom yes.
    temperature = np.sum(v ** 2) / (3 * len(v) - 3)
    assert abs(temperature - cfg.temperature) < 1e-6  # velocity create scales.


def test_work_folder_keeps_inputs_and_logs(tiny):
  _, output = tiny
  work = os.path.join(output, "work")
  for stem in ("equilibrate", "configs/chain_from_000",
               "ensembles/config_000/traj_00"):
    assert os.path.getsize(os.path.join(work, stem + ".in")) > 0
    assert os.path.getsize(os.path.join(work, stem + ".log")) > 0
  with open(os.path.join(work, "equilibrate.in")) as f:
    assert "pair_modify shift yes" in f.read()


def test_resume_regenerates_only_missing_files_identically(tiny, monkeypatch):
  """The removed system and its Fs_A are rewritten, through `atomic_write`
  (a kill leaves neither half-written); nothing else is."""
  cfg, output = tiny
  files = _files(output)
  before = {f: os.path.getmtime(f) for f in files}
  removed = data.load_system(files[1])
  os.remove(files[1])
  written = record_atomic_writes(monkeypatch)
  simulate.generate(cfg, output)
  assert [os.path.basename(p) for p in written] == [
      "fs.npz", os.path.basename(files[1])]
  for f in files:
    if f != files[1]:
      assert os.path.getmtime(f) == before[f]
  again = data.load_system(files[1])
  assert again["time_indices"] == removed["time_indices"]
  np.testing.assert_array_equal(
      np.stack(again["trajectory_target_positions"][9]),
      np.stack(removed["trajectory_target_positions"][9]))


def test_cli_stores_targets_from_the_same_work(tiny, tmp_path):
  _, output = tiny
  work = os.path.join(output, "work")
  subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.simulate",
       "--config=configs/simulate_ka.py:tiny", f"--output={tmp_path}",
       f"--config.work_dir={work}", "--config.store=targets"],
      cwd=REPO, check=True, capture_output=True, timeout=300)
  for full, small in zip(_files(output), _files(str(tmp_path))):
    system = data.load_system(small)
    assert "trajectory_target_positions" not in system
    assert len(system["targets"]) == 10
    assert all(t.dtype == np.float32 for t in system["targets"])
    reference = data.load_system(full)
    for k in range(10):
      np.testing.assert_array_equal(system["targets"][k],
                                    data.system_targets(reference, k))
