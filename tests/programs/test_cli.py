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


@pytest.mark.parametrize("module, own_flags", [
    ("glassy_jax.programs.train", ["--config", "--workdir", "--version"]),
    ("glassy_jax.programs.apply", ["--checkpoint", "--input", "--output"]),
    ("glassy_jax.programs.evaluate", ["--checkpoint", "--data"]),
    ("glassy_jax.programs.baselines", ["--data", "--baselines"]),
    ("glassy_jax.programs.plot", ["--checkpoint", "--output"]),
])
def test_help_lists_the_programs_own_flags(module, own_flags, tmp_path):
  result = subprocess.run([sys.executable, "-m", module, "--help"],
                          cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
  # absl's --help exits with status 1.
  listed = re.findall(r"^  (--(?:\[no\])?\w+)", result.stdout, re.M)
  listed = [flag.replace("[no]", "") for flag in listed]
  assert set(own_flags) <= set(listed), listed
  assert "Try --helpfull" in result.stdout
  assert result.stdout.split("\n", 1)[0].strip()  # The program's docstring.


def test_named_configs_resolve_from_any_directory(tmp_path):
  path = cli.config_file("fast:demo")
  assert path.endswith(os.path.join("configs", "fast.py") + ":demo")
  assert os.path.isfile(path.partition(":")[0])
  assert cli.config_file("configs/fast.py") == "configs/fast.py" or (
      not os.path.exists("configs/fast.py"))
  assert "bapst" in cli.named_configs() and "fast" in cli.named_configs()

  def train(*args):
    return subprocess.run(
        [sys.executable, "-m", "glassy_jax.programs.train", *args,
         f"--workdir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, check=False)

  # Outside the checkout the name loads (and its imports resolve): the
  # override check below can only run on a loaded config.
  result = train("--config=fast:test", "--config.data.dir=/x")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      "error: --config.data.dir: the config has no such key; did you mean "
      "config.data.directory?"]
  result = train("--config=nope")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      "error: --config=nope: no such file and no shipped config of that name")
  assert not (tmp_path / "run").exists()


def test_version_and_no_tpu_line(tmp_path):
  import glassy_jax  # pylint: disable=g-import-not-at-top
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.evaluate", "--version"],
      cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0
  assert result.stdout.strip() == f"glassy_jax {glassy_jax.__version__}"
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.evaluate",
       "--checkpoint=t044_s09", f"--data={tmp_path}"],
      cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
  assert "Unable to initialize backend" not in result.stderr


def test_dataset_directories(tmp_path, monkeypatch):
  with pytest.raises(cli.UsageError, match="is a file; --data takes a "
                     "dataset directory"):
    cli.dataset_directory(__file__)
  monkeypatch.chdir(tmp_path)
  demo = cli.dataset_directory("demo")
  assert os.path.isdir(os.path.join(demo, "train"))
  (tmp_path / "demo").mkdir()  # A directory of the user's wins.
  assert cli.dataset_directory("demo") == "demo"
