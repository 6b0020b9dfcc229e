"""The wheel: what a user installs outside the repository works there."""

import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_the_wheel_runs_the_quick_start_from_an_empty_directory(tmp_path):
  wheels, site, empty = tmp_path / "wheels", tmp_path / "site", tmp_path / "x"
  empty.mkdir()
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                  "--wheel-dir", str(wheels), REPO],
                 check=True, capture_output=True, timeout=300)
  (wheel,) = wheels.iterdir()
  subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                  "--no-deps", "--target", str(site), str(wheel)],
                 check=True, capture_output=True, timeout=300)
  # The wheel's package first; its dependencies from this environment.
  env = dict(os.environ, PYTHONPATH=str(site), JAX_PLATFORMS="cpu")
  where = subprocess.run(
      [sys.executable, "-c", "import glassy_jax.configs as c; print(c.__file__)"],
      cwd=empty, env=env, capture_output=True, text=True, check=True)
  assert where.stdout.startswith(str(site))
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.evaluate",
       "--checkpoint=t044_s09", "--data=demo", "--time_indices=0"],
      cwd=empty, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  # The README's figure: the published network on the bundled demo data.
  assert "| t044_s09 | demo_data | 0.64 | 0 | 0.1 | 0.900 | 0.7993" in (
      result.stdout)
  assert sorted(os.listdir(empty)) == []  # Nothing written where it ran.
