"""Atomic writes: the previous file or the new one, and errors naming it."""

import os

import pytest

from glassy_jax.formats import atomic



def test_failed_write_leaves_the_previous_file(tmp_path):
  path = tmp_path / "table.csv"
  path.write_text("previous")
  with pytest.raises(RuntimeError, match="killed"):
    with atomic.atomic_write(str(path), "w") as f:
      f.write("half of the new one")
      raise RuntimeError("killed")
  assert path.read_text() == "previous"
  assert os.listdir(tmp_path) == ["table.csv"]


def test_written_file_replaces_the_previous_one(tmp_path):
  path = tmp_path / "new" / "table.csv"
  with atomic.atomic_write(str(path), "w", newline="") as f:
    f.write("a,b\r\n")
  assert path.read_bytes() == b"a,b\r\n"
  mask = os.umask(0)
  os.umask(mask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("where", ["folder", "temporary", "rename"])
def test_unwritable_paths_are_named_in_one_line(tmp_path, where):
  """The message names the file asked for, never the temporary one, and
  nothing is left behind."""
  (tmp_path / "folder").mkdir()
  path, reason = {
      "folder": ("/proc/nope/x.npz", "No such file or directory"),
      "temporary": ("/proc/x.npz", "No such file or directory"),
      "rename": (str(tmp_path / "folder"), "Is a directory"),
  }[where]
  if path.startswith("/proc") and not os.path.isdir("/proc/self"):
    pytest.skip("needs Linux's /proc")
  with pytest.raises(atomic.WriteError) as error:
    with atomic.atomic_write(path) as f:
      f.write(b"data")
  assert str(error.value) == f"cannot write to {path}: {reason}"
  assert isinstance(error.value, OSError)
  assert os.listdir(tmp_path) == ["folder"]


def test_errors_about_other_files_pass_through(tmp_path):
  with pytest.raises(FileNotFoundError) as error:
    with atomic.atomic_write(str(tmp_path / "out.npz")) as f:
      with open(tmp_path / "absent", "rb") as source:
        f.write(source.read())
  assert not isinstance(error.value, atomic.WriteError)
  assert os.listdir(tmp_path) == []
