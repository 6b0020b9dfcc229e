"""Shared fixtures. Tests run on 2 forced CPU devices so pmap is exercised."""

import os
import struct

# Must precede the first `import jax` of the session.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
# Must precede the first `import gcsfs` (glassy_jax.formats.storage says why).
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import re  # pylint: disable=g-import-not-at-top,wrong-import-position

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

# pylint: disable=wrong-import-position
from glassy_jax.configs import bapst
from glassy_jax.formats import atomic
from glassy_jax.formats import data as data_lib
from glassy_jax.formats import storage
from glassy_jax.network import model_config
from glassy_jax.network import models
from glassy_jax.training import checkpoints
# pylint: enable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# DeepMind's published files, shipped with the tests (see NOTICE).
DEEPMIND = os.path.join(REPO, "tests", "testdata", "deepmind")
PUBLISHED_CHECKPOINT = os.path.join(DEEPMIND, "t044_s09.ckpt")
TEST_SMALL = os.path.join(DEEPMIND, "test_small.pickle")
# Optional data the project may not ship (ka4096_T044.npz): tests that read it
# skip without it. Pointing GLASSY_JAX_REFERENCE_DIR at a missing folder
# shows which tests depend on it.
REFERENCE = os.environ.get("GLASSY_JAX_REFERENCE_DIR",
                           os.path.join(REPO, "..", "shared", "reference"))


@pytest.fixture(autouse=True, scope="session")
def _cache_in_a_temporary_directory(tmp_path_factory):
  """Inherent structures and descriptors the tests compute stay out of the
  user's cache (glassy_jax.physics.inherent_structures.default_cache_directory)."""
  os.environ["GLASSY_JAX_CACHE"] = str(tmp_path_factory.mktemp("cache"))


BUCKET = "glassy-test"


@pytest.fixture(scope="session")
def gcs_emulator():
  """URL of a GCS emulator on loopback for the whole session (see
  storage_emulators.py), with the environment gcsfs (STORAGE_EMULATOR_HOST)
  and tensorstore read, inherited by the programs the tests start."""
  pytest.importorskip("gcsfs")
  pytest.importorskip("gcp_storage_emulator")
  import storage_emulators  # pylint: disable=g-import-not-at-top
  with storage_emulators.gcs_emulator(BUCKET) as url:
    patch = pytest.MonkeyPatch()
    patch.setenv("STORAGE_EMULATOR_HOST", url)
    patch.setenv("TENSORSTORE_GCS_HTTP_URL", url)
    patch.setenv("GOOGLE_AUTH_TOKEN_FOR_TESTING", "test")
    try:
      yield url
    finally:
      patch.undo()


@pytest.fixture
def gcs_dir(gcs_emulator, request):  # pylint: disable=redefined-outer-name
  """A fresh `gs://` folder in the emulator's bucket, named after the test
  (fsspec reads brackets in names as globs: they become underscores)."""
  del gcs_emulator
  return f"gs://{BUCKET}/{re.sub(r'[^A-Za-z0-9_-]', '_', request.node.name)}"


@pytest.fixture(scope="session")
def s3_emulator():
  """URL of moto's S3 server on loopback, with a bucket `BUCKET`."""
  pytest.importorskip("s3fs")
  pytest.importorskip("moto.server")
  import storage_emulators  # pylint: disable=g-import-not-at-top
  import s3fs  # pylint: disable=g-import-not-at-top
  with storage_emulators.s3_emulator() as url:
    patch = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": url}.items():
      patch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir(BUCKET)
    try:
      yield url
    finally:
      s3fs.S3FileSystem.clear_instance_cache()
      patch.undo()


def reference_file(*parts):
  """Path of a file under the reference folder, or skip the test."""
  path = os.path.join(REFERENCE, *parts)
  if not os.path.exists(path):
    pytest.skip(f"reference data not available: {path}")
  return path


def synthetic_system(seed: int, n: int = 192, num_trajectories: int = 2):
  """A DeepMind-format system whose propensity is a function of structure.

  Particles sit on a jittered cubic lattice at density 1.2; each one moves
  by a distance that grows with the number of B particles within the graph
  cutoff and with time, in a random direction, so a graph network can learn
  the target.
  """
  rng = np.random.default_rng(seed)
  side = round(n ** (1 / 3))
  box_length = (side ** 3 / 1.2) ** (1 / 3)
  grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1)
  positions = (grid.reshape(-1, 3) + 0.5 + rng.normal(0, 0.15, (side**3, 3))
               ) * box_length / side
  n = len(positions)
  types = (rng.random(n) < 0.2).astype(np.int32)
  d = positions[:, None] - positions[None]
  d -= box_length * np.round(d / box_length)
  distance = np.linalg.norm(d, axis=-1)
  b_neighbours = ((distance < 2.0) & (distance > 0)) @ types
  mobility = 0.05 + 0.03 * b_neighbours + 0.05 * types
  times = np.geomspace(0.1, 100, 10)
  trajectories = []
  for t in times:
    per_time = []
    for _ in range(num_trajectories):
      direction = rng.normal(size=(n, 3))
      direction /= np.linalg.norm(direction, axis=1, keepdims=True)
      per_time.append(positions + direction * (mobility * np.log1p(t))[:, None])
    trajectories.append(per_time)
  return {
      "positions": positions, "types": types,
      "box": np.full(3, box_length), "time": list(times),
      "time_indices": list(range(10)),
      "is_values": np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1,
                             np.exp(-1)]),
      "trajectory_start_velocities": [rng.normal(size=(n, 3))
                                      for _ in range(num_trajectories)],
      "trajectory_target_positions": trajectories,
      "metadata": {"temperature": 0.44, "pressure": 2.9,
                   "fluid": "synthetic"},
  }


def write_synthetic_dataset(directory, num_train=4, num_test=2, **kwargs):
  for split, count, offset in (("train", num_train, 0),
                               ("test", num_test, 1000)):
    for i in range(count):
      data_lib.write_system(
          os.path.join(directory, split, f"aggregated-{i:03d}.pickle"),
          synthetic_system(offset + i, **kwargs))
  return str(directory)


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
  """A small DeepMind-format dataset: 4 training and 2 test systems."""
  return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"))


def record_atomic_writes(monkeypatch):
  """The paths `atomic_write` is asked for from now on (a list that grows)."""
  paths = []
  write = atomic.atomic_write

  def recording(path, *args, **kwargs):
    paths.append(str(path))
    return write(path, *args, **kwargs)

  monkeypatch.setattr(atomic, "atomic_write", recording)
  return paths


def read_events(logdir):
  """The events of the event files in `logdir` (a folder or a bucket URL),
  in TensorBoard's order.

  Parsed with tensorboardX's own protobufs, so no TensorBoard install is
  needed: an event file is TFRecords (length, its CRC, event, its CRC).
  """
  event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")
  events = []
  for name in storage.listdir(str(logdir)):
    if ".tfevents." not in name:
      continue
    data = storage.read_bytes(storage.join(str(logdir), name))
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack_from("<Q", data, offset)
      events.append(event_pb2.Event.FromString(
          data[offset + 12:offset + 12 + length]))
      offset += 12 + length + 4
  return events


def read_scalars(logdir):
  """{tag: [(step, value)]} of the event files in `logdir`."""
  scalars = {}
  for event in read_events(logdir):
    for value in event.summary.value:
      scalars.setdefault(value.tag, []).append(
          (event.step, value.simple_value))
  return scalars


def truncate_checkpoint(step_directory):
  """A failing disk's copy of a run's (orbax) checkpoint, locally or in a
  bucket: every array file of its state cut to 4 bytes."""
  state = storage.join(step_directory, "state")
  folders = [storage.join(state, "d")] + [
      storage.join(state, name, "d") for name in storage.listdir(state)
      if name.startswith("ocdbt.process_")]
  files = [storage.join(folder, name) for folder in folders
           for name in storage.listdir(folder)]
  assert files, step_directory
  for path in files:
    storage.write_bytes(path, storage.read_bytes(path)[:4])


def make_random_checkpoint(path, time_indices=(), **metadata):
  """A Bapst checkpoint with random TF1-scaled parameters; network, params.

  Drawn with numpy from the shapes alone: `network.init` takes ~10 s on CPU.
  With `time_indices`, a joint model with one output per index; `metadata`:
  other `CheckpointMetadata` fields (target scale).
  """
  config = bapst.get_config().model
  if time_indices:
    config.decoder_sizes = (64, 64, len(time_indices))
  rng = np.random.default_rng(0)
  params = {module: {name: (rng.normal(size=shape) / np.sqrt(shape[0])
                            if name == "w" else rng.normal(0, 0.1, shape)
                            ).astype(np.float32)
                     for name, shape in leaves.items()}
            for module, leaves in models.param_shapes(config).items()}
  checkpoints.save(str(path), {"params": params},
                   checkpoints.CheckpointMetadata(
                       model=model_config.ModelConfig.of(config),
                       time_indices=time_indices, **metadata))
  return models.make_network(config), params
