"""Checkpoints: one `.npz` per checkpoint, written atomically.

A checkpoint holds a pytree of arrays (the training state, or parameters
alone) plus its `CheckpointMetadata` as JSON: the model config, the target
time index and statistics, the step. `apply`/`evaluate` rebuild the network
from the file alone. Files are written to a temporary name and renamed, so a run killed at
any instant leaves either the previous checkpoint or the new one, never half
of one (`atomic.py`). Plain numpy files (no pickle) load anywhere without this package.
A checkpoint path (and the manager's folder) may be a bucket URL, `gs://`
or `s3://` (`glassy_jax.formats.storage`): there each checkpoint is one object
upload, whole or absent, and a damaged one is set aside by a copy and a
delete.

Checkpoints shipped with the package (`pretrained/`, see NOTICE) are also
found by name: `t044_s09` is DeepMind's published network, converted.
Wherever parameters are loaded (`load_params`), the prefix of a TensorFlow
checkpoint of DeepMind's network (`PREFIX.index`) serves as well
(`tf_checkpoint`, read without TensorFlow).
"""

import dataclasses
import json
import math
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from absl import logging
import jax
import numpy as np

from glassy_jax import errors
from glassy_jax.formats import atomic
from glassy_jax.formats import storage
from glassy_jax.network import model_config
from glassy_jax.network import model_inputs
from glassy_jax.network import tf_checkpoint

METADATA_KEY = "__metadata__"
PRETRAINED_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained")
_STEP_FILE = re.compile(r"ckpt-(\d+)\.npz")


class CheckpointError(errors.UserError, ValueError):
  """A checkpoint is missing or does not fit what it is loaded into."""


@dataclasses.dataclass(frozen=True)
class CheckpointMetadata:
  """What a checkpoint says about itself: enough to rebuild its network and
  use its predictions. Written by training and by the TF converter, read by
  apply, evaluate and the plots; stored as JSON under the keys of
  `to_json` (the file format since the first release)."""
  model: model_config.ModelConfig
  time_index: int = 0  # The target time index trained on.
  # A joint multi-time model: output k predicts time index time_indices[k]
  # (`time_index` is then unused). Empty: one output, at `time_index`.
  time_indices: Tuple[int, ...] = ()
  # Graph cutoff of the inputs (DeepMind's by default).
  cutoff: float = model_inputs.InputSpec.cutoff
  # The rest of `model_inputs.InputSpec` (inherent structures, descriptors
  # and their training statistics); empty: DeepMind's inputs.
  inputs: Dict[str, Any] = dataclasses.field(default_factory=dict)
  # Training targets were (t - target_mean) / target_std: one value, or one
  # per entry of `time_indices`.
  target_mean: Union[float, Tuple[float, ...]] = 0.0
  target_std: Union[float, Tuple[float, ...]] = 1.0
  step: Optional[int] = None
  best_metric: float = -math.inf  # Best test metric of the run so far.
  source: str = ""  # Where converted parameters came from.
  config: Dict[str, Any] = dataclasses.field(default_factory=dict)  # Run's.

  def __post_init__(self):
    """Sequences (JSON lists, training's per-index arrays) as tuples."""
    for key in ("time_indices", "target_mean", "target_std"):
      value = getattr(self, key)
      if np.ndim(value):
        object.__setattr__(self, key, tuple(np.asarray(value).tolist()))

  def input_spec(self) -> model_inputs.InputSpec:
    """How snapshots become this network's input graphs."""
    return model_inputs.InputSpec(cutoff=self.cutoff, **self.inputs)

  def to_json(self) -> Dict[str, Any]:
    values = dataclasses.asdict(self)
    values["model_config"] = values.pop("model")
    return values

  @classmethod
  def from_json(cls, values: Mapping[str, Any], path: str
                ) -> "CheckpointMetadata":
    """Checks a file's metadata; keys it lacks (older files) take their
    defaults, and keys this version does not use are ignored."""
    if "model_config" not in values:
      raise CheckpointError(f"{path}: metadata has no model_config")
    known = {f.name for f in dataclasses.fields(cls)} - {"model"}
    try:
      metadata = cls(model=model_config.ModelConfig.of(values["model_config"]),
                     **{k: v for k, v in values.items() if k in known})
      spec = metadata.input_spec()
    except (ValueError, TypeError) as e:
      raise CheckpointError(f"{path}: unusable metadata ({e})") from None
    if spec.num_descriptors != metadata.model.node_descriptors or (
        len(spec.descriptor_mean) != spec.num_descriptors):
      raise CheckpointError(
          f"{path}: inputs give {spec.num_descriptors} descriptors "
          f"({len(spec.descriptor_mean)} with statistics), the network reads "
          f"{metadata.model.node_descriptors}")
    std = np.asarray(metadata.target_std, np.float64)
    if not (np.all(np.isfinite(std)) and np.all(std > 0)):
      raise CheckpointError(f"{path}: target_std must be a positive number, "
                            f"got {metadata.target_std}")
    outputs, needed = (metadata.model.decoder_sizes[-1],
                       model_config.outputs_for(metadata.time_indices))
    if outputs != needed:
      raise CheckpointError(
          f"{path}: decoder_sizes[-1] is {outputs}, time_indices "
          f"{metadata.time_indices} needs {needed} (one output per index)")
    for key in ("target_mean", "target_std"):
      value = getattr(metadata, key)
      if np.ndim(value) and len(value) != len(metadata.time_indices):
        raise CheckpointError(f"{path}: {key} has {len(value)} values for "
                              f"{len(metadata.time_indices)} time_indices")
    return metadata


def _flatten(tree: Any) -> Dict[str, np.ndarray]:
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path): np.asarray(jax.device_get(leaf))
          for path, leaf in leaves}


def save(path: str, tree: Any, metadata: CheckpointMetadata) -> None:
  """Writes `tree` and `metadata` to `path` atomically."""
  arrays = _flatten(tree)
  arrays[METADATA_KEY] = np.asarray(json.dumps(metadata.to_json()))
  with atomic.atomic_write(path) as f:
    np.savez(f, **arrays)


def bundled_names() -> List[str]:
  """Names of the checkpoints shipped with the package."""
  return sorted(name[:-len(".npz")] for name in os.listdir(PRETRAINED_DIR)
                if name.endswith(".npz"))


def resolve(path: str) -> str:
  """The bundled checkpoint `path` names, when no file of that name exists.

  Every loader goes through here, so `--checkpoint=t044_s09` and
  `--config.init_from=t044_s09` work from any directory.
  """
  if not storage.exists(path) and path in bundled_names():
    return os.path.join(PRETRAINED_DIR, path + ".npz")
  return path


def load(path: str) -> Tuple[Dict[str, np.ndarray], CheckpointMetadata]:
  """The flat arrays (keyed by tree path) and the metadata of a checkpoint.

  `path` is a file (or URL) or the name of a bundled checkpoint.
  """
  path = resolve(path)
  if not storage.isfile(path):
    raise CheckpointError(f"{path}: no such checkpoint (bundled ones, usable "
                          f"by name: {', '.join(bundled_names())})")
  try:
    with storage.open_file(path, "rb") as f, np.load(
        f, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
    metadata = json.loads(str(arrays.pop(METADATA_KEY)))
  except Exception as e:  # Truncated zips, foreign files: many error types.
    detail = " ".join(f"{type(e).__name__}: {e}".split())
    raise CheckpointError(f"{path}: damaged or not a glassy_jax checkpoint "
                          f"({detail})") from None
  return arrays, CheckpointMetadata.from_json(metadata, path)


def restore(path: str, template: Any) -> Tuple[Any, CheckpointMetadata]:
  """Loads `path` into the structure of `template`, checking every shape."""
  arrays, metadata = load(path)
  leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
  restored = []
  for key_path, leaf in leaves:
    key = jax.tree_util.keystr(key_path)
    if key not in arrays:
      raise CheckpointError(f"{path}: has no {key} (another architecture?)")
    value = arrays[key]
    if value.shape != np.shape(leaf):
      raise CheckpointError(f"{path}: {key} has shape {value.shape}, the "
                            f"model expects {np.shape(leaf)}")
    if np.issubdtype(value.dtype, np.floating) and not np.all(
        np.isfinite(value)):
      raise CheckpointError(f"{path}: {key} holds NaN or inf")
    restored.append(value.astype(np.asarray(leaf).dtype))
  return jax.tree_util.tree_unflatten(treedef, restored), metadata


# How a network is computed, not what it is: a checkpoint fits either way.
_COMPUTATION_OPTIONS = ("implementation", "edge_chunk_size", "remat",
                        "compute_dtype")


def restore_params(path: str, params: Dict[str, Dict[str, np.ndarray]],
                   model: model_config.ModelConfig) -> Any:
  """The parameters of checkpoint `path` (a file or bundled name) in place
  of `params`, a network of `model`'s; when they do not fit, one line that
  names the architecture options in which the two networks differ."""
  try:
    return restore(resolve(path), {"params": params})[0]["params"]
  except CheckpointError:
    saved = load(resolve(path))[1].model
    differ = [f"{f.name}={getattr(saved, f.name)!r} (this config: "
              f"{getattr(model, f.name)!r})"
              for f in dataclasses.fields(model)
              if f.name not in _COMPUTATION_OPTIONS
              and getattr(saved, f.name) != getattr(model, f.name)]
    if not differ:
      raise
    raise CheckpointError(
        f"{path} is another network than this config's: "
        f"{', '.join(differ)}; start from a checkpoint of this architecture, "
        "or train with the config it came from") from None


def params_from_arrays(arrays: Dict[str, np.ndarray],
                       prefix: str = "") -> Dict[str, Dict[str, np.ndarray]]:
  """Rebuilds a Haiku params dict from flat keys `PREFIX['module']['name']`."""
  pattern = re.compile(re.escape(prefix) + r"\['([^']+)'\]\['([^']+)'\]$")
  params: Dict[str, Dict[str, np.ndarray]] = {}
  for key, value in arrays.items():
    match = pattern.match(key)
    if match:
      params.setdefault(match.group(1), {})[match.group(2)] = value
  return params


class CheckpointManager:
  """Keeps the last `keep` checkpoints of a run and its best one.

  Files: `DIR/ckpt-<step>.npz` and `DIR/best.npz`.
  """

  def __init__(self, directory: str, keep: int = 3):
    self.directory = directory
    self.keep = max(1, keep)

  @property
  def best_path(self) -> str:
    return storage.join(self.directory, "best.npz")

  def steps(self):
    found = []
    for name in storage.listdir(self.directory):
      match = _STEP_FILE.fullmatch(name)
      if match:
        found.append(int(match.group(1)))
    return sorted(found)

  def latest_path(self) -> Optional[str]:
    steps = self.steps()
    return self._path(steps[-1]) if steps else None

  def restore_latest(self, template: Any
                     ) -> Tuple[Any, CheckpointMetadata, str]:
    """The newest checkpoint that reads into `template`, and its path. An
    unreadable one (truncated, not an npz, wrong shapes, non-finite values)
    is renamed aside to `NAME.damaged`, kept, with a warning saying why,
    and the next older one is tried; none readable is an error."""
    damaged = []
    for step in reversed(self.steps()):
      path = self._path(step)
      try:
        tree, metadata = restore(path, template)
      except CheckpointError as e:
        aside = path + ".damaged"
        storage.rename(path, aside)
        damaged.append(aside)
        logging.warning("skipping %s, kept as %s: %s", path, aside, e)
        continue
      if damaged:
        logging.warning("resuming from the older %s", path)
      return tree, metadata, path
    raise CheckpointError(
        f"{self.directory}: no readable checkpoint to resume from"
        + (f" (damaged ones kept as {', '.join(damaged)})" if damaged else ""))

  def _path(self, step: int) -> str:
    return storage.join(self.directory, f"ckpt-{step:09d}.npz")

  def save(self, step: int, tree: Any, metadata: CheckpointMetadata) -> str:
    path = self._path(step)
    save(path, tree, dataclasses.replace(metadata, step=step))
    for old in self.steps()[:-self.keep]:
      storage.remove(self._path(old))
    return path

  def save_best(self, step: int, tree: Any,
                metadata: CheckpointMetadata) -> None:
    save(self.best_path, tree, dataclasses.replace(metadata, step=step))


def load_tf(prefix: str, time_index: int = 0
            ) -> Tuple[Dict[str, Dict[str, np.ndarray]], CheckpointMetadata]:
  """Haiku parameters of a TensorFlow checkpoint of DeepMind's network, and
  metadata saying what they are (trained at `time_index`)."""
  return tf_checkpoint.load_bapst(prefix), CheckpointMetadata(
      model=model_config.ModelConfig(), time_index=time_index,
      source=tf_checkpoint.source(prefix))


def load_params(path: str) -> Tuple[Dict[str, Dict[str, np.ndarray]],
                                    CheckpointMetadata]:
  """Haiku parameters and metadata of a checkpoint: a file (training or
  converted), the name of a bundled one, or a TF prefix (`load_tf`).

  Every checkpoint saves a dict whose `params` entry is the Haiku params.
  """
  path = resolve(path)
  if tf_checkpoint.exists(path):
    return load_tf(path)
  arrays, metadata = load(path)
  params = params_from_arrays(arrays, prefix="['params']")
  if not params:
    raise CheckpointError(f"{path}: holds no model parameters")
  return params, metadata
