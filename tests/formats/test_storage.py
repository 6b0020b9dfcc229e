"""glassy_jax.formats.storage: one path type, local or in a bucket (emulators on
loopback), and the one-line refusals."""

import os
import subprocess
import sys

import pytest

from glassy_jax.formats import atomic
from glassy_jax.formats import storage
from conftest import REPO


@pytest.fixture(params=["local", "gcs", "s3"])
def folder(request, tmp_path):
  """A fresh folder: local, in the GCS emulator, in moto's S3."""
  if request.param == "local":
    return str(tmp_path / "folder")
  if request.param == "gcs":
    return request.getfixturevalue("gcs_dir")
  request.getfixturevalue("s3_emulator")
  return f"s3://glassy-test/{request.node.name.replace('[', '_')[:-1]}"


def test_files_round_trip(folder):
  storage.makedirs(folder)
  path = storage.join(folder, "sub", "a.txt")
  assert not storage.exists(path)
  storage.makedirs(storage.join(folder, "sub"))
  with atomic.atomic_write(path, "w") as f:
    f.write("one\n")
  with storage.open_file(path, "r") as f:
    assert f.read() == "one\n"
  assert storage.isfile(path) and storage.isdir(storage.join(folder, "sub"))
  storage.write_bytes(storage.join(folder, "sub", "b.npz"), b"x")
  assert storage.listdir(storage.join(folder, "sub")) == ["a.txt", "b.npz"]
  assert storage.glob(storage.join(folder, "sub", "*.npz")) == [
      storage.join(folder, "sub", "b.npz")]
  storage.rename(path, path + ".damaged")
  assert storage.read_bytes(path + ".damaged") == b"one\n"
  assert not storage.exists(path)
  storage.remove(path + ".damaged")
  assert storage.listdir(storage.join(folder, "missing")) == []


def test_create_only_once(folder):
  storage.makedirs(folder)
  lock = storage.join(folder, ".lock")
  assert storage.create(lock, b"first")
  assert not storage.create(lock, b"second")  # The store refuses it.
  assert storage.read_bytes(lock) == b"first"


def test_append_to_an_object_is_refused(gcs_dir):
  with pytest.raises(storage.StorageError, match="cannot append"):
    with storage.open_file(gcs_dir + "/metrics.jsonl", "a"):
      pass


def test_failed_atomic_write_leaves_no_object(gcs_dir):
  path = gcs_dir + "/report.md"
  with pytest.raises(RuntimeError):
    with atomic.atomic_write(path, "w") as f:
      f.write("half")
      raise RuntimeError
  assert not storage.exists(path)


def test_unknown_scheme_and_missing_backend_are_one_line(monkeypatch,
                                                         tmp_path):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(storage.StorageError) as error:
    storage.makedirs("hdfs://cluster/runs")
  assert str(error.value) == (
      "hdfs://cluster/runs: unknown storage scheme hdfs:// (this package "
      "reads and writes local paths, gs:// and s3://)")
  monkeypatch.setitem(sys.modules, "gcsfs", None)  # Not installed.
  with pytest.raises(storage.StorageError) as error:
    with atomic.atomic_write("gs://bucket/runs/report.md", "w") as f:
      f.write("x")
  assert str(error.value) == (
      "gs://bucket/runs/report.md: gs:// paths need gcsfs (and fsspec): "
      "pip install 'glassy_jax[cloud]'")
  assert os.listdir(tmp_path) == []  # No ./gs: folder.


@pytest.mark.parametrize("workdir,error", [
    ("hdfs://cluster/runs/bapst",
     "error: hdfs://cluster/runs/bapst: unknown storage scheme hdfs:// (this "
     "package reads and writes local paths, gs:// and s3://)"),
    # orbax-checkpoint cannot write to s3:// (etils.epath has no S3 backend).
    ("s3://my-bucket/runs/bapst",
     "error: s3://my-bucket/runs/bapst/checkpoints: orbax-checkpoint cannot "
     "write to s3://")])
def test_training_in_a_workdir_it_cannot_use_is_one_line(tmp_path, workdir,
                                                         error):
  """The issue's case: a URL is never a local folder named after it; the
  run refuses before it takes the workdir, and writes nothing anywhere."""
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, "run_training.py"),
       "--config=bapst:test", f"--workdir={workdir}"],
      cwd=tmp_path, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(error)
  assert os.listdir(tmp_path) == []
