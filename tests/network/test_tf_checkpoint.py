"""The TF checkpoint reader and the import of DeepMind's published network."""

import dataclasses
import struct
import subprocess
import sys

import jax
import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.network import model_config
from glassy_jax.network import models
from glassy_jax.network import tf_checkpoint
from glassy_jax.physics import graphs
from glassy_jax.training import checkpoints

from conftest import REPO, TEST_SMALL, reference_file, synthetic_system
from conftest import PUBLISHED_CHECKPOINT as PREFIX


# ------------------------------------------------ synthetic tensor bundle
def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
    value >>= 7
    if not value:
      return bytes(out)


def _field(number: int, payload, wire: int = 0) -> bytes:
  tag = _varint(number << 3 | wire)
  if wire == 0:
    return tag + _varint(payload)
  if wire == 2:
    return tag + _varint(len(payload)) + payload
  return tag + struct.pack("<I", payload)  # wire 5: fixed32.


def _block(entries) -> bytes:
  """A LevelDB block: entries without prefix sharing, one restart point."""
  body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v
                  for k, v in entries)
  body += struct.pack("<II", 0, 1)
  return body + bytes([0]) + struct.pack(
      "<I", tf_checkpoint.masked_crc32c(body + bytes([0])))


def _write_bundle(prefix: str, tensors) -> None:
  """The smallest tensor bundle TF would write for `tensors` (float32/int64)."""
  dtypes = {np.dtype(np.float32): 1, np.dtype(np.int64): 9}
  entries = [(b"", _field(1, 1) + _field(3, _field(1, 1), wire=2))]
  blob = b""
  for name, array in sorted(tensors.items()):
    raw = array.tobytes()
    shape = b"".join(_field(2, _field(1, d), wire=2) for d in array.shape)
    entries.append((name.encode(), _field(1, dtypes[array.dtype])
                    + _field(2, shape, wire=2) + _field(4, len(blob))
                    + _field(5, len(raw))
                    + _field(6, tf_checkpoint.masked_crc32c(raw), wire=5)))
    blob += raw
  data_block = _block(entries)
  index_block = _block([(b"\xff", _varint(0) + _varint(len(data_block) - 5))])
  handles = (_varint(0) + _varint(0) + _varint(len(data_block))
             + _varint(len(index_block) - 5))
  footer = handles.ljust(40, b"\0") + struct.pack("<Q", 0xdb4775248b80fb57)
  with open(prefix + ".index", "wb") as f:
    f.write(data_block + index_block + footer)
  with open(prefix + ".data-00000-of-00001", "wb") as f:
    f.write(blob)


def test_crc32c_known_value():
  assert tf_checkpoint.crc32c(b"123456789") == 0xE3069283


def test_reads_synthetic_bundle(tmp_path):
  tensors = {"a/w": np.arange(6, dtype=np.float32).reshape(2, 3),
             "b": np.array([1, -2, 3 << 40, 0], np.int64)}
  prefix = str(tmp_path / "tiny.ckpt")
  _write_bundle(prefix, tensors)
  read = tf_checkpoint.read_tf_checkpoint(prefix)
  assert sorted(read) == sorted(tensors)
  for name, array in tensors.items():
    np.testing.assert_array_equal(read[name], array)
    assert read[name].dtype == array.dtype


def test_corrupt_tensor_fails_checksum(tmp_path):
  prefix = str(tmp_path / "tiny.ckpt")
  _write_bundle(prefix, {"x": np.ones(4, np.float32)})
  with open(prefix + ".data-00000-of-00001", "r+b") as f:
    f.write(b"\x01")  # The first byte of 1.0f is 0x00.
  with pytest.raises(tf_checkpoint.TFCheckpointError, match="x fails its"):
    tf_checkpoint.read_tf_checkpoint(prefix)


def test_not_a_checkpoint(tmp_path):
  prefix = str(tmp_path / "junk")
  (tmp_path / "junk.index").write_bytes(b"\0" * 100)
  with pytest.raises(tf_checkpoint.TFCheckpointError, match="magic"):
    tf_checkpoint.read_tf_checkpoint(prefix)
  with pytest.raises(tf_checkpoint.TFCheckpointError, match="no such file"):
    tf_checkpoint.read_tf_checkpoint(str(tmp_path / "absent"))


# -------------------------------------------------- the published network
@pytest.fixture(scope="module")
def variables():
  return tf_checkpoint.read_tf_checkpoint(PREFIX)


@pytest.fixture(scope="module")
def ka4096():
  with np.load(reference_file("ka4096_T044.npz")) as z:
    arrays = {k: z[k] for k in z.files}
  snapshot = data.Snapshot(arrays["positions"],
                           arrays["types"].astype(np.int32), arrays["box"],
                           None)
  return arrays, graphs.build_graph(snapshot)


@pytest.fixture(scope="module")
def predictions(variables, ka4096):
  """Predictions of both implementations with the imported parameters."""
  params = tf_checkpoint.bapst_params_from_tf(variables)
  out = {}
  for implementation in model_config.IMPLEMENTATIONS:
    config = model_config.ModelConfig().as_config_dict()
    config.implementation = implementation
    network = models.make_network(config)
    with jax.default_matmul_precision("highest"):
      out[implementation] = np.asarray(
          jax.jit(network.apply)(params, None, ka4096[1]))
  return out


@pytest.mark.parametrize("implementation", model_config.IMPLEMENTATIONS)
def test_reproduces_reference_predictions(predictions, ka4096, implementation):
  diff = np.abs(predictions[implementation]
                - ka4096[0]["reference_predictions"]).max()
  print(f"{implementation}: max |prediction - reference| = {diff:.3g}")
  assert diff < 1e-4


def test_correlates_with_propensity(predictions, ka4096):
  arrays = ka4096[0]
  a = arrays["types"] == 0
  r = np.corrcoef(predictions["fused"][a], arrays["targets_t0132"][a])[0, 1]
  print(f"Pearson r (A) with targets_t0132: {r:.4f}")
  assert r >= 0.9


@pytest.mark.parametrize("change, message", [
    ("reshape", "Graph/graph_network/edge_block/mlp/linear_0/w has shape"),
    ("delete", "missing Graph/graph_independent_1/node_model/mlp/linear_2/b"),
    ("add", "unexpected Graph/graph_independent/node_model/mlp/linear_2/w"),
])
def test_refuses_other_networks(variables, change, message):
  changed = dict(variables)
  if change == "reshape":
    changed["Graph/graph_network/edge_block/mlp/linear_0/w"] = np.zeros(
        (256, 64), np.float32)
  elif change == "delete":
    del changed["Graph/graph_independent_1/node_model/mlp/linear_2/b"]
  else:
    changed["Graph/graph_independent/node_model/mlp/linear_2/w"] = np.zeros(
        (64, 64), np.float32)
  with pytest.raises(tf_checkpoint.TFCheckpointError) as error:
    tf_checkpoint.bapst_params_from_tf(changed)
  assert message in str(error.value)
  assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """The shipped TF checkpoint, converted by the command line tool."""
  out = tmp_path_factory.mktemp("converted") / "t044_s09.npz"
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.convert_tf",
       f"--tf_checkpoint={PREFIX}", f"--output={out}", "--time_index=0"],
      cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  return str(out)


def test_converter_writes_project_checkpoint(converted, variables):
  params, metadata = checkpoints.load_params(converted)
  expected = tf_checkpoint.bapst_params_from_tf(variables)
  assert params.keys() == expected.keys()
  for module, leaves in expected.items():
    for name, value in leaves.items():
      np.testing.assert_array_equal(params[module][name], value)
  assert metadata.time_index == 0
  assert metadata.cutoff == graphs.DEFAULT_CUTOFF
  assert metadata.model == model_config.ModelConfig()


def test_bundled_checkpoint_is_the_converted_published_one(converted):
  """The package's t044_s09.npz is what the converter makes of the shipped
  TF files, to the bit. Its model_config may predate options added since
  (they default to DeepMind's network); if a default changes, regenerate it
  with the command in tf_checkpoint's docstring."""
  bundled, bundled_metadata = checkpoints.load("t044_s09")
  fresh, fresh_metadata = checkpoints.load(converted)
  assert bundled.keys() == fresh.keys()
  for key, value in fresh.items():
    assert bundled[key].dtype == value.dtype, key
    np.testing.assert_array_equal(bundled[key], value, err_msg=key)
  assert bundled_metadata == fresh_metadata


def _numpy_bapst(variables, snapshot):
  """DeepMind's network in float64 numpy from the raw TF variables, written
  from docs/specification.md ("Graph", "Network"): it shares no code with
  the import, the graph builder or the Haiku model."""
  w = {name: value.astype(np.float64) for name, value in variables.items()}

  def mlp(scope, x, num_layers=2, relu_last=True):
    for k in range(num_layers):
      x = x @ w[f"{scope}/linear_{k}/w"] + w[f"{scope}/linear_{k}/b"]
      if relu_last or k < num_layers - 1:
        x = np.maximum(x, 0)
    return x

  d = snapshot.positions[None] - snapshot.positions[:, None]  # r_j - r_i.
  d -= snapshot.box * np.round(d / snapshot.box)
  senders, receivers = np.nonzero(np.linalg.norm(d, axis=-1) < 2.0)
  enc_v = mlp("Graph/graph_independent/node_model/mlp",
              snapshot.types[:, None].astype(np.float64))
  enc_e = mlp("Graph/graph_independent/edge_model/mlp", d[senders, receivers])
  h_v, h_e = enc_v, enc_e
  for _ in range(7):
    node_in = np.concatenate([h_v, enc_v], axis=1)
    h_e = mlp("Graph/graph_network/edge_block/mlp", np.concatenate(
        [h_e, enc_e, node_in[receivers], node_in[senders]], axis=1))
    received = np.zeros((len(h_v), h_e.shape[1]))
    np.add.at(received, receivers, h_e)
    h_v = mlp("Graph/graph_network/node_block/mlp",
              np.concatenate([received, node_in], axis=1))
  return mlp("Graph/graph_independent_1/node_model/mlp", h_v, num_layers=3,
             relu_last=False)[:, 0]


@pytest.fixture(scope="module", params=["test_small", "dense"])
def structure(request):
  """test_small.pickle's 20 particles are too far apart to be neighbours
  (self-edges only), so a 216-particle system at density 1.2 (about 40
  neighbours each) checks the message passing."""
  system = (data.load_system(TEST_SMALL) if request.param == "test_small"
            else synthetic_system(0))
  return data.to_snapshot(system, None)


@pytest.mark.parametrize("implementation", model_config.IMPLEMENTATIONS)
def test_bundled_network_equals_numpy_forward(variables, structure,
                                              implementation):
  """The bundled checkpoint in the Haiku model computes what DeepMind's
  network computes, whatever ka4096 availability."""
  expected = _numpy_bapst(variables, structure)
  params, metadata = checkpoints.load_params("t044_s09")
  network = models.make_network(dataclasses.replace(
      metadata.model, implementation=implementation))
  with jax.default_matmul_precision("highest"):
    predictions = np.asarray(network.apply(
        params, None, graphs.build_graph(structure)))
  print(f"{implementation}: max |haiku - numpy| = "
        f"{np.abs(predictions - expected).max():.3g}, predictions "
        f"{expected.min():.3f}..{expected.max():.3f}")
  np.testing.assert_allclose(predictions, expected, rtol=0, atol=1e-5)


def test_converter_error_is_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.convert_tf",
       f"--tf_checkpoint={tmp_path / 'absent'}", f"--output={tmp_path / 'o'}"],
      cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith("error: ")
