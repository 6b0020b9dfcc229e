"""Dataset format: targets, the restricted unpickler, validation, npz form."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from glassy_jax.formats import data as data_lib
from glassy_jax.formats import layouts
from conftest import REPO, TEST_SMALL, synthetic_system, write_synthetic_dataset


def test_propensity_matches_hand_computation():
  initial = np.array([[0., 0., 0.], [1., 2., 3.]])
  trajectories = [np.array([[1., 0., 0.], [1., 2., 4.]]),
                  np.array([[0., 1., 0.], [1., 0., 3.]]),
                  np.array([[0., 0., 5.], [1., 2., 3.]])]
  targets = data_lib.propensity(initial, trajectories)
  np.testing.assert_allclose(targets, [7 / 3, 1], rtol=1e-6)
  assert targets.dtype == np.float32


def test_deepmind_test_pickle_targets_grow_with_time():
  system = data_lib.load_system(TEST_SMALL)
  means = {i: data_lib.system_targets(system, i).mean() for i in range(10)}
  # Index 9 (IS = 1/e) lies between IS 0.4 (index 5) and 0.3 (index 6).
  order = [0, 1, 2, 3, 4, 5, 9, 6, 7, 8]
  assert all(means[a] < means[b] for a, b in zip(order, order[1:])), means


def test_precomputed_targets_form_loads_like_trajectories(tmp_path):
  system = synthetic_system(0, n=64)
  expected = [data_lib.system_targets(system, i) for i in range(10)]
  compact = {k: v for k, v in system.items()
             if not k.startswith("trajectory_")}
  compact["targets"] = expected
  path = str(tmp_path / "aggregated-targets.pickle")
  data_lib.write_system(path, compact)
  loaded = data_lib.load_system(path)
  for i in range(10):
    np.testing.assert_array_equal(data_lib.system_targets(loaded, i),
                                  expected[i])


@pytest.mark.parametrize("form", ["targets", "trajectories"])
def test_npz_form_round_trips(tmp_path, form):
  system = synthetic_system(1, n=64)
  if form == "targets":
    system["targets"] = [data_lib.system_targets(system, i)
                         for i in range(10)]
    del system["trajectory_target_positions"]
  pickled, npz = str(tmp_path / "a.pickle"), str(tmp_path / "a.npz")
  data_lib.write_system(pickled, system)
  data_lib.write_system(npz, system)
  a, b = data_lib.load_system(pickled), data_lib.load_system(npz)
  assert b["metadata"] == a["metadata"]
  assert b["time_indices"] == a["time_indices"]
  for i in range(10):
    np.testing.assert_array_equal(data_lib.system_targets(a, i),
                                  data_lib.system_targets(b, i))


class _Exploit:
  """Unpickling this calls open(path, 'w'): arbitrary code execution."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (open, (self.path, "w"))


def test_hostile_pickle_is_refused_before_running_code(tmp_path):
  victim = tmp_path / "pwned"
  path = tmp_path / "aggregated-evil.pickle"
  with open(path, "wb") as f:
    pickle.dump({"positions": _Exploit(str(victim))}, f, protocol=3)
  with pytest.raises(data_lib.DataError) as error:
    data_lib.load_system(str(path))
  assert str(error.value).startswith(f"{path}: refusing to load '")
  assert not victim.exists()


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("types"), "missing key"),
    (lambda s: s.update(types=s["types"][:-1]), "types has shape"),
    (lambda s: s["positions"].__setitem__((0, 0), np.nan), "NaN"),
    (lambda s: s["types"].__setitem__(0, 2), "types must be 0"),
    (lambda s: s.update(box=np.array([5.0, -1.0, 5.0])), "box must be"),
    (lambda s: s.update(targets=[np.full(len(s["types"]), np.inf)]),
     "targets contain NaN"),
])
def test_invalid_systems_give_one_line_errors(tmp_path, change, message):
  system = synthetic_system(2, n=64)
  change(system)
  path = str(tmp_path / "aggregated-bad.pickle")
  with open(path, "wb") as f:
    pickle.dump(system, f, protocol=3)
  with pytest.raises(data_lib.DataError, match=message) as error:
    data_lib.load_system(path)
  assert path in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("suffix, content, message", [
    (".pickle", "text", "not a pickle or .npz system file (UnpicklingError"),
    (".pickle", "empty", "empty file, not a pickle or .npz system file"),
    (".pickle", "half", "damaged or truncated (UnpicklingError"),
    (".pickle", "random", "not a pickle or .npz system file (UnpicklingError"),
    (".npz", "text", "not a pickle or .npz system file (ValueError"),
    (".npz", "half", "damaged or truncated (BadZipFile"),
])
def test_files_that_are_not_systems_say_so(tmp_path, suffix, content,
                                           message):
  """Not the parser's riddles ("Memo value not found at index 101" for a
  text file): the file, what is wrong with it, then the parser's words."""
  path = str(tmp_path / f"aggregated-000{suffix}")
  data_lib.write_system(path, synthetic_system(3, n=64))
  with open(path, "rb") as f:
    whole = f.read()
  with open(path, "wb") as f:
    f.write({"text": b"positions 0 0 0\nbox 5 5 5\n", "empty": b"",
             "half": whole[:len(whole) // 2],
             "random": np.random.default_rng(0).bytes(1000)}[content])
  with pytest.raises(data_lib.DataError) as error:
    data_lib.load_system(path)
  assert str(error.value).startswith(f"{path}: {message}")
  assert "\n" not in str(error.value)


def test_missing_files(tmp_path):
  with pytest.raises(data_lib.DataError, match="no such file"):
    data_lib.load_system(str(tmp_path / "absent.pickle"))
  with pytest.raises(data_lib.DataError, match="no dataset files"):
    layouts.list_files(str(tmp_path), "train")


def test_time_index_out_of_range():
  system = synthetic_system(4, n=64)
  with pytest.raises(data_lib.DataError, match="time index 10 out of range"):
    data_lib.system_targets(system, 10)


def test_convert_command_writes_an_equivalent_npz_dataset(tmp_path):
  source, target = tmp_path / "pickles", tmp_path / "npz"
  write_synthetic_dataset(source, num_train=2, num_test=1, n=64)
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.convert_data",
       f"--input={source}", f"--output={target}"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  converted = layouts.list_files(str(target), "train")
  assert [os.path.basename(f) for f in converted] == [
      "aggregated-000.npz", "aggregated-001.npz"]
  for original, npz in zip(layouts.list_files(str(source), "train"),
                           converted):
    a = data_lib.to_snapshot(data_lib.load_system(original), 5)
    b = data_lib.to_snapshot(data_lib.load_system(npz), 5)
    np.testing.assert_array_equal(a.targets, b.targets)
    np.testing.assert_array_equal(a.positions, b.positions)
  failed = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.convert_data",
       f"--input={tmp_path / 'none'}", f"--output={target}"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert failed.returncode != 0
  assert failed.stderr.strip().splitlines()[-1].startswith("error: no files")
  unwritable = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.convert_data",
       f"--input={source}", "--output=/proc/nope"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert unwritable.returncode != 0
  assert "Traceback" not in unwritable.stderr
  assert unwritable.stderr.strip().splitlines()[-1] == (
      "error: cannot write to /proc/nope/train/aggregated-000.npz: No such "
      "file or directory")
