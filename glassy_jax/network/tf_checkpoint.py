"""TensorFlow 1 checkpoints read with numpy alone, and DeepMind's Bapst import.

DeepMind published its trained glassy-dynamics network as a TensorFlow 1
checkpoint (`docs/specification.md`, "The published checkpoint"). Depending
on TensorFlow to read 800 kB of weights would be out of proportion, so this
module parses the tensor-bundle format itself:

* `PREFIX.index` is an SSTable (LevelDB table format): a 48-byte footer with
  the block handles of the metaindex and index blocks (varints) and the magic
  number 0xdb4775248b80fb57; blocks of prefix-compressed key/value entries
  followed by restart points and a 5-byte trailer (compression type, masked
  CRC32C). Key "" holds the BundleHeaderProto, every other key is a tensor
  name whose value is a BundleEntryProto (dtype, shape, shard, offset, size,
  masked CRC32C of the bytes), decoded here by a minimal protobuf reader.
* `PREFIX.data-SSSSS-of-NNNNN` hold the raw tensors.

Every block and tensor checksum is verified. `checkpoints.load_params`
reads such a checkpoint wherever a project checkpoint is accepted, and
`checkpoints.load_tf` gives its parameters with their metadata, which the
converter (`glassy_jax.programs.convert_tf`) writes as a checkpoint in this
project's format that `apply` and `run_training --config.init_from` load.
The package ships t044_s09 converted (`pretrained/t044_s09.npz`, loaded by
the name `t044_s09`), made from the copy of DeepMind's files in
`tests/testdata/deepmind` (see NOTICE) with:

  python -m glassy_jax.programs.convert_tf \
      --tf_checkpoint=tests/testdata/deepmind/t044_s09.ckpt \
      --output=glassy_jax/pretrained/t044_s09.npz --time_index=0
"""

import os
import struct
from typing import Any, Dict, Iterator, List, NamedTuple, Tuple

import numpy as np

from glassy_jax import errors
from glassy_jax.network import model_config
from glassy_jax.network import models

_MAGIC = 0xdb4775248b80fb57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5
# tensorflow/core/framework/types.proto, numeric types only.
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8,
           5: np.int16, 6: np.int8, 9: np.int64, 10: np.bool_, 17: np.uint16,
           19: np.float16, 22: np.uint32, 23: np.uint64}

# DeepMind's Sonnet module scopes -> the Haiku modules of `models.BapstNetwork`.
TF_TO_HAIKU = {
    "Graph/graph_independent/node_model/mlp": "bapst/~/encoder_node",
    "Graph/graph_independent/edge_model/mlp": "bapst/~/encoder_edge",
    "Graph/graph_network/edge_block/mlp": "bapst/~/processor_edge",
    "Graph/graph_network/node_block/mlp": "bapst/~/processor_node",
    "Graph/graph_independent_1/node_model/mlp": "bapst/~/decoder",
}
# Adam's moment estimates, saved next to each variable.
_OPTIMIZER_SLOTS = ("/Adam", "/Adam_1")


class TFCheckpointError(errors.UserError, ValueError):
  """A TF checkpoint is unreadable or does not hold the Bapst network."""


# ---------------------------------------------------------------- primitives
def _crc32c_table() -> List[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), the checksum TF bundles and tables use."""
  crc = 0xFFFFFFFF
  table = _CRC32C_TABLE
  for byte in data:
    crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  """The masked CRC that block trailers and bundle entries store."""
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
  """Decodes a base-128 varint at `pos`; returns (value, next position)."""
  value, shift = 0, 0
  while True:
    if pos >= len(buf) or shift > 63:
      raise TFCheckpointError("truncated or overlong varint")
    byte = buf[pos]
    pos += 1
    value |= (byte & 0x7F) << shift
    if not byte & 0x80:
      return value, pos
    shift += 7


def _proto_fields(buf: bytes) -> Iterator[Tuple[int, Any]]:
  """(field number, value) of a protobuf message: ints or bytes."""
  pos = 0
  while pos < len(buf):
    tag, pos = _varint(buf, pos)
    field, wire = tag >> 3, tag & 7
    if wire == 0:
      value, pos = _varint(buf, pos)
    elif wire == 1:
      value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
    elif wire == 2:
      length, pos = _varint(buf, pos)
      value, pos = buf[pos:pos + length], pos + length
    elif wire == 5:
      value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
    else:
      raise TFCheckpointError(f"unsupported protobuf wire type {wire}")
    if pos > len(buf):
      raise TFCheckpointError("truncated protobuf message")
    yield field, value


# ------------------------------------------------------------------- SSTable
def _read_block(table: bytes, handle: bytes) -> bytes:
  """The contents of the block a BlockHandle (offset, size) points at."""
  offset, pos = _varint(handle, 0)
  size, _ = _varint(handle, pos)
  end = offset + size + _BLOCK_TRAILER_SIZE
  if end > len(table):
    raise TFCheckpointError("block extends past the end of the index file")
  block, kind = table[offset:offset + size], table[offset + size]
  stored_crc = struct.unpack_from("<I", table, offset + size + 1)[0]
  if masked_crc32c(block + bytes([kind])) != stored_crc:
    raise TFCheckpointError(f"index block at byte {offset} fails its checksum")
  if kind != 0:
    raise TFCheckpointError(
        f"index block at byte {offset} is compressed (type {kind}); TF "
        "bundles are written uncompressed")
  return block


def _block_entries(block: bytes) -> Iterator[Tuple[bytes, bytes]]:
  """(key, value) pairs of a block; keys share prefixes with their previous."""
  if len(block) < 4:
    raise TFCheckpointError("index block too short")
  num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
  end = len(block) - 4 * (num_restarts + 1)
  if end < 0:
    raise TFCheckpointError("index block has a corrupt restart array")
  pos, key = 0, b""
  while pos < end:
    shared, pos = _varint(block, pos)
    unshared, pos = _varint(block, pos)
    value_size, pos = _varint(block, pos)
    if shared > len(key) or pos + unshared + value_size > end:
      raise TFCheckpointError("corrupt index block entry")
    key = key[:shared] + block[pos:pos + unshared]
    pos += unshared
    yield key, block[pos:pos + value_size]
    pos += value_size


def _table_entries(table: bytes) -> Iterator[Tuple[bytes, bytes]]:
  """Every (key, value) of an SSTable, in key order."""
  if len(table) < _FOOTER_SIZE:
    raise TFCheckpointError("index file shorter than an SSTable footer")
  footer = table[-_FOOTER_SIZE:]
  if struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)[0] != _MAGIC:
    raise TFCheckpointError("not an SSTable (bad magic number)")
  _, pos = _varint(footer, 0)  # Metaindex offset (TF writes no filters).
  _, pos = _varint(footer, pos)
  index_handle = footer[pos:]
  for _, data_handle in _block_entries(_read_block(table, index_handle)):
    yield from _block_entries(_read_block(table, data_handle))


# -------------------------------------------------------------------- bundle
class _Entry(NamedTuple):
  """A BundleEntryProto: where a tensor lives and how to read it."""
  dtype: int
  shape: Tuple[int, ...]
  shard: int
  offset: int
  size: int
  crc: int
  sliced: bool


def _parse_shape(buf: bytes) -> Tuple[int, ...]:
  """TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 }."""
  dims = []
  for field, value in _proto_fields(buf):
    if field == 2:
      dims.append(next((v for f, v in _proto_fields(value) if f == 1), 0))
    elif field == 3 and value:
      raise TFCheckpointError("tensor of unknown rank")
  return tuple(dims)


def _parse_entry(buf: bytes) -> _Entry:
  fields = {1: 0, 2: b"", 3: 0, 4: 0, 5: 0, 6: 0}
  sliced = False
  for field, value in _proto_fields(buf):
    if field == 7:
      sliced = True
    elif field in fields:
      fields[field] = value
  return _Entry(dtype=fields[1], shape=_parse_shape(fields[2]),
                shard=fields[3], offset=fields[4], size=fields[5],
                crc=fields[6], sliced=sliced)


def read_tf_checkpoint(prefix: str) -> Dict[str, np.ndarray]:
  """All numeric tensors of a TF tensor-bundle checkpoint, by variable name.

  Tensors of other types (strings, resources) and partitioned variables are
  left out: the Bapst network has none.
  """
  index_path = prefix + ".index"
  if not os.path.isfile(index_path):
    raise TFCheckpointError(f"{index_path}: no such file")
  with open(index_path, "rb") as f:
    table = f.read()
  try:
    entries = list(_table_entries(table))
    if not entries or entries[0][0]:
      raise TFCheckpointError("no bundle header (not a TF tensor-bundle "
                              "checkpoint?)")
    header = dict(_proto_fields(entries[0][1]))
    tensor_entries = [(key.decode("utf-8"), _parse_entry(value))
                      for key, value in entries[1:]]
  except (TFCheckpointError, struct.error, IndexError,
          UnicodeDecodeError) as e:
    raise TFCheckpointError(f"{index_path}: {e}") from None
  num_shards = header.get(1, 1)
  byte_order = ">" if header.get(2, 0) else "<"
  tensors = {}
  shard_files = {}
  try:
    for name, entry in tensor_entries:
      if entry.sliced or entry.dtype not in _DTYPES:
        continue
      tensors[name] = _read_tensor(prefix, name, entry, num_shards,
                                   byte_order, shard_files)
  finally:
    for f in shard_files.values():
      f.close()
  return tensors


def _read_tensor(prefix: str, name: str, entry: _Entry, num_shards: int,
                 byte_order: str, shard_files: Dict[int, Any]) -> np.ndarray:
  """Reads and checks one tensor's bytes from its data shard."""
  path = f"{prefix}.data-{entry.shard:05d}-of-{num_shards:05d}"
  if entry.shard not in shard_files:
    if not os.path.isfile(path):
      raise TFCheckpointError(f"{path}: no such file (needed for {name})")
    shard_files[entry.shard] = open(path, "rb")
  dtype = np.dtype(_DTYPES[entry.dtype]).newbyteorder(byte_order)
  if entry.size != dtype.itemsize * int(np.prod(entry.shape, dtype=np.int64)):
    raise TFCheckpointError(f"{prefix}: {name} has {entry.size} bytes for "
                            f"shape {entry.shape} of {dtype}")
  f = shard_files[entry.shard]
  f.seek(entry.offset)
  raw = f.read(entry.size)
  if len(raw) != entry.size:
    raise TFCheckpointError(f"{path}: truncated ({name} lies past its end)")
  if masked_crc32c(raw) != entry.crc:
    raise TFCheckpointError(f"{path}: {name} fails its checksum")
  return np.frombuffer(raw, dtype).reshape(entry.shape).astype(
      dtype.newbyteorder("="))


# ------------------------------------------------------------ Bapst mapping
def _tf_name(haiku_module: str, param: str) -> str:
  """`bapst/~/decoder/~/linear_2`, `w` -> `Graph/.../mlp/linear_2/w`."""
  scope, _, layer = haiku_module.rpartition("/~/")
  tf_scope = next(tf for tf, hk in TF_TO_HAIKU.items() if hk == scope)
  return f"{tf_scope}/{layer}/{param}"


def bapst_params_from_tf(variables: Dict[str, np.ndarray]
                         ) -> Dict[str, Dict[str, np.ndarray]]:
  """Haiku params of the faithful network from DeepMind's TF variables.

  Raises `TFCheckpointError` naming every missing, misshapen or unexpected
  variable: an import that half fits would predict garbage silently.
  """
  expected = models.param_shapes(model_config.ModelConfig())
  params, problems, used = {}, [], set()
  for module, leaves in expected.items():
    for param, shape in leaves.items():
      name = _tf_name(module, param)
      used.add(name)
      if name not in variables:
        problems.append(f"missing {name}")
      elif variables[name].shape != shape:
        problems.append(f"{name} has shape {variables[name].shape}, the "
                        f"network needs {shape}")
      else:
        params.setdefault(module, {})[param] = (
            variables[name].astype(np.float32))
  unexpected = sorted(
      name for name in variables
      if name not in used and not name.endswith(_OPTIMIZER_SLOTS)
      and any(name.startswith(scope + "/") for scope in TF_TO_HAIKU))
  problems += [f"unexpected {name} (another architecture?)"
               for name in unexpected]
  if problems:
    raise TFCheckpointError(
        "not DeepMind's Bapst network: " + "; ".join(problems))
  return params


def exists(prefix: str) -> bool:
  """Whether `prefix` names a TF checkpoint (`PREFIX.index` is a file)."""
  return os.path.isfile(prefix + ".index")


def source(prefix: str) -> str:
  """Where parameters read from `prefix` came from, for their metadata: the
  name alone, since a path would tie the file to the machine it was
  converted on (the converted t044_s09 ships with the package)."""
  return (f"TensorFlow checkpoint {os.path.basename(prefix)} "
          "(DeepMind glassy_dynamics, Apache-2.0)")


def load_bapst(prefix: str) -> Dict[str, Dict[str, np.ndarray]]:
  """Haiku params of a TF Bapst checkpoint (`models.BapstNetwork` of
  `model_config.ModelConfig()`)."""
  variables = read_tf_checkpoint(prefix)
  try:
    return bapst_params_from_tf(variables)
  except TFCheckpointError as e:
    raise TFCheckpointError(f"{prefix}: {e}") from None
