"""Many configurations -> a dataset directory: split, summary, resume."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.formats import lammps_io
from glassy_jax.simulation import build_dataset

N, L = 20, 10.0
STEPS = [10 * 2 ** k for k in range(9)]


def _configuration(folder, seed, runs=2):
  """start.dump and random-walk runs whose first frame is the start."""
  os.makedirs(folder)
  rng = np.random.default_rng(seed)
  start = lammps_io.make_frame(rng.uniform(0, L, (N, 3)),
                               np.array([0] * 16 + [1] * 4), [L] * 3)
  lammps_io.write_dump(os.path.join(folder, "start.data"), start)
  sigma = np.sqrt(np.diff(0.002 * 2.0 ** np.arange(len(STEPS)), prepend=0))
  for r in range(1, runs + 1):
    walk = np.cumsum(rng.normal(size=(len(STEPS), N, 3))
                     * sigma[:, None, None], axis=0)
    frames = [start] + [start._replace(timestep=s, positions=start.positions
                                       + walk[k])
                        for k, s in enumerate(STEPS)]
    lammps_io.write_dump(os.path.join(folder, f"run_{r}.dump"), frames)


@pytest.fixture
def configurations(tmp_path):
  for k in range(5):
    _configuration(str(tmp_path / "sims" / f"config_{k}"), seed=k)
  return tmp_path / "sims"


def test_dataset_layout_split_and_summary(configurations, tmp_path):
  out = str(tmp_path / "dataset")
  rows = build_dataset.build_dataset([str(configurations / "config_*")], out,
                                     test_fraction=0.4, seed=1)
  assert [r["split"] for r in rows] == build_dataset.split(5, 0.4, 1)
  assert sorted(r["split"] for r in rows).count("test") == 2
  assert len(layouts.list_files(out, "train")) == 3
  assert len(layouts.list_files(out, "test")) == 2
  for r in rows:
    system = data.load_system(os.path.join(out, r["file"]))
    is_a = system["types"] == 0
    for p in r["points"]:
      assert p["time"] == system["time"][p["frame"]]
      assert p["mean_displacement_a"] == pytest.approx(
          data.system_targets(system, p["index"])[is_a].mean())
  summary = open(os.path.join(out, build_dataset.SUMMARY)).read()
  assert "5 configurations: 3 train, 2 test (seed 1" in summary
  assert summary.count("| config_3 |") == 11
  assert os.path.getsize(os.path.join(out, build_dataset.FIGURE)) > 1000
  # A parent folder finds the same configurations.
  assert [c.name for c in build_dataset.find_configurations(
      [str(configurations)])] == [f"config_{k}" for k in range(5)]


def test_times_given_instead_of_is_values(configurations, tmp_path):
  rows = build_dataset.build_dataset([str(configurations / "config_*")],
                                     str(tmp_path / "d"),
                                     target_times=[0.1, 1.0])
  for r in rows:
    assert [p["time"] for p in r["points"]] == [0.1, 1.6]
  with pytest.raises(data.DataError, match=r"end at t = 12.8, before the "
                     r"time asked for, 100"):
    build_dataset.build_dataset([str(configurations / "config_*")],
                                str(tmp_path / "e"), target_times=[100])


def test_resume_and_changed_settings(configurations, tmp_path):
  out = tmp_path / "dataset"
  build_dataset.build_dataset([str(configurations / "config_*")], str(out))
  files = sorted(p for split in ("train", "test")
                 for p in (out / split).iterdir())
  mtimes = {p: p.stat().st_mtime_ns for p in files}
  os.remove(files[0])
  # A configuration whose runs changed is built again too.
  run = configurations / "config_4" / "run_1.dump"
  os.utime(run, ns=(run.stat().st_atime_ns, run.stat().st_mtime_ns + 10**9))
  build_dataset.build_dataset([str(configurations / "config_*")], str(out))
  rebuilt = [p for p in files if p.stat().st_mtime_ns != mtimes.get(p)]
  assert files[0].exists()
  assert [p.name for p in rebuilt] == sorted(
      [files[0].name, "aggregated-004.pickle"])
  with pytest.raises(data.DataError, match=r"built before with other "
                     r"settings \(seed"):
    build_dataset.build_dataset([str(configurations / "config_*")], str(out),
                                seed=5)


def test_refusals(configurations, tmp_path):
  with pytest.raises(data.DataError, match="no folders match"):
    build_dataset.find_configurations([str(tmp_path / "nothing_*")])
  with pytest.raises(data.DataError, match="a train/test split needs"):
    build_dataset.build_dataset([str(configurations / "config_0")],
                                str(tmp_path / "d"))
  with pytest.raises(data.DataError, match="no runs match traj_"):
    build_dataset.find_configurations([str(configurations / "config_0")],
                                      runs_pattern="traj_*.dump")


def test_cli(configurations, tmp_path):
  out = str(tmp_path / "dataset")
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.build_dataset",
       f"--configurations={configurations}/config_*", f"--output={out}",
       "--times=0.1,1"], cwd=REPO, capture_output=True, text=True,
      timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  assert "wrote " + out + ": 4 train and 1 test systems" in result.stdout
  assert "only 2 runs" in result.stderr
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.build_dataset",
       f"--configurations={configurations}/config_*", f"--output={out}",
       "--times=soon"], cwd=REPO, capture_output=True, text=True,
      timeout=120, check=False)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "error: --times must be numbers, got soon")
