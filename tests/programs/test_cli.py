"""The programs: installed entry points, and one-line errors."""

import importlib
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO
from glassy_jax.formats import atomic
from glassy_jax.programs import cli


def _console_scripts():
  with open(os.path.join(REPO, "setup.py")) as f:
    return re.findall(r'"(glassy-[\w-]+) = ([\w.]+):(\w+)"', f.read())


def test_every_console_script_names_a_program():
  scripts = _console_scripts()
  assert {name for name, _, _ in scripts} >= {
      "glassy-train", "glassy-apply", "glassy-evaluate", "glassy-plot",
      "glassy-simulate"}
  for _, module, function in scripts:
    assert callable(getattr(importlib.import_module(module), function))


@pytest.mark.parametrize("module, args, message", [
    ("glassy_jax.programs.apply",
     ["--checkpoint=nope", "--input=x", "--output=y"],
     "error: nope: no such checkpoint"),
    ("glassy_jax.programs.plot", ["scatter"],
     "error: scatter needs --checkpoint --input --output"),
    ("glassy_jax.programs.plot", ["histogram"],
     "error: expected one command out of curves"),
    ("glassy_jax.programs.evaluate",
     ["--checkpoint=t044_s09", "--data=/nope"],
     "error: /nope: no such directory"),
    ("glassy_jax.programs.convert_data", ["--input=/nope", "--output=/tmp/x"],
     "error: no files match /nope/"),
    ("glassy_jax.programs.build_system",
     ["--initial=x", "--trajectories=/nope*", "--output=y"],
     "error: no files match /nope*"),
])
def test_programs_fail_in_one_line(module, args, message):
  result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(message)


def test_os_errors_read_as_path_and_reason():
  error = FileNotFoundError(2, "No such file or directory", "/a/b")
  assert cli._message(error) == "/a/b: No such file or directory"
  written = atomic.write_error("/c", error)
  assert cli._message(written) == (
      "cannot write to /c: No such file or directory")
