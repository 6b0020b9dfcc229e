"""Checkpoints in two forms, read by one loader (`load`, `restore`).

Both hold a pytree of arrays (the training state, or parameters alone),
flattened to a dict keyed by tree path, plus its `CheckpointMetadata` as
JSON: the model config, the target time index and statistics, the step.
`apply`/`evaluate` rebuild the network from either form alone.

* A run's checkpoints, `DIR/ckpt_<step>/`, go through orbax-checkpoint
  (`CheckpointManager`), the JAX ecosystem's checkpointer: every process
  takes part in a save, saves run in the background, and a step directory
  counts only once complete (a temporary name renamed locally, a commit
  marker in a bucket), so a run killed at any instant resumes from the last
  complete one.
* One `.npz` file: the run's best network (`best.npz`), the bundled
  published one, converted TF checkpoints. Written atomically (`atomic.py`);
  numpy alone reads it, without this package or orbax.

Paths may be bucket URLs, `gs://` (both forms) or `s3://` (`.npz` only:
orbax's paths library has no S3 backend), see `glassy_jax.formats.storage`.

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

from absl import flags
from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from glassy_jax import errors
from glassy_jax.formats import atomic
from glassy_jax.formats import storage
from glassy_jax.network import model_config
from glassy_jax.network import model_inputs
from glassy_jax.network import tf_checkpoint

METADATA_KEY = "__metadata__"
PRETRAINED_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained")
# A run's step directories, `ckpt_000000120`; each holds two orbax items.
_STEP_NAMES = ocp.step.standard_name_format(step_prefix="ckpt",
                                            step_format_fixed_length=9)
_STATE, _METADATA = "state", "metadata"
# A run's checkpoints before orbax (glassy_jax 0.2): `ckpt-000000120.npz`.
_NPZ_STEP_FILE = re.compile(r"ckpt-\d+\.npz")


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
  """Writes `tree` and `metadata` to the `.npz` file `path`, atomically."""
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


def is_step_directory(path: str) -> bool:
  """Whether `path` is one of a run's orbax step directories."""
  return storage.isdir(storage.join(path, _STATE))


def _read_npz(path: str) -> Tuple[Dict[str, np.ndarray], Any]:
  with storage.open_file(path, "rb") as f, np.load(
      f, allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files}
  return arrays, json.loads(str(arrays.pop(METADATA_KEY)))


def _for_orbax(path: str) -> str:
  """`path` as orbax takes it: a URL, or an absolute local path."""
  return path if storage.is_url(path) else os.path.abspath(
      storage.local(path))


def _step_directory(directory: str, step: int) -> str:
  return storage.join(directory, _STEP_NAMES.build_name(step))


def complete_steps(directory: str) -> List[int]:
  """The steps of the complete checkpoints under `directory`, read now.

  Safe beside a running trainer: orbax's own listing
  (`CheckpointManager.reload`, also run when one is made) reads every
  step's metrics, and fails when the trainer's keep-N deletes a step
  between the listing and the read.
  """
  return sorted(found.step
                for found in _STEP_NAMES.find_all(_for_orbax(directory)))


def latest_step_directory(directory: str) -> Optional[str]:
  """The newest complete step directory under `directory`, if any."""
  steps = complete_steps(directory)
  return _step_directory(directory, steps[-1]) if steps else None


def _read_step(path: str) -> Tuple[Dict[str, np.ndarray], Any]:
  """The arrays of step directory `path`, restored as numpy arrays into a
  template made from the shapes it records (our own check then compares
  them with the network's: orbax would cast a mismatched template)."""
  path = _for_orbax(path)
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler(**{
      _STATE: ocp.StandardCheckpointHandler(),
      _METADATA: ocp.JsonCheckpointHandler()}))
  stored = checkpointer.metadata(path).item_metadata
  if stored is None or stored.get(_STATE) is None:
    raise KeyError(f"no readable {_STATE} item")
  template = {key: np.empty(value.shape, value.dtype)
              for key, value in stored[_STATE].tree.items()}
  restored = checkpointer.restore(path, args=ocp.args.Composite(**{
      _STATE: ocp.args.StandardRestore(template),
      _METADATA: ocp.args.JsonRestore()}))
  return dict(restored[_STATE]), restored[_METADATA]


def load(path: str) -> Tuple[Dict[str, np.ndarray], CheckpointMetadata]:
  """The flat arrays (keyed by tree path) and the metadata of a checkpoint.

  `path` is an `.npz` file, a run's step directory (`ckpt_<step>`) or its
  checkpoints directory (the newest step), a URL of one of these, or the
  name of a bundled checkpoint.
  """
  path = resolve(path)
  if storage.isdir(path) and not is_step_directory(path):
    latest = latest_step_directory(path)
    if latest is None:
      raise CheckpointError(f"{path}: a directory without checkpoints")
    path = latest
  if not (storage.isfile(path) or is_step_directory(path)):
    raise CheckpointError(f"{path}: no such checkpoint (bundled ones, usable "
                          f"by name: {', '.join(bundled_names())})")
  step = is_step_directory(path)
  # Damage: in a step, tensorstore's ValueErrors (OUT_OF_RANGE, DATA_LOSS,
  # NOT_FOUND), bad JSON, a missing item (KeyError); in an npz (truncated
  # zips, foreign files) error types of every kind.
  damage = (ValueError, KeyError, OSError) if step else Exception
  try:
    arrays, metadata = _read_step(path) if step else _read_npz(path)
  except damage as e:
    detail = " ".join(f"{type(e).__name__}: {e}".split())[:400]
    raise CheckpointError(f"{path}: damaged or not a glassy_jax checkpoint "
                          f"({detail})") from None
  return arrays, CheckpointMetadata.from_json(metadata, path)


def restore(path: str, template: Any) -> Tuple[Any, CheckpointMetadata]:
  """Loads `path` into the structure of `template`, checking every shape
  and dtype."""
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
    if value.dtype != np.asarray(leaf).dtype:
      raise CheckpointError(f"{path}: {key} has dtype {value.dtype}, the "
                            f"model expects {np.asarray(leaf).dtype}")
    if np.issubdtype(value.dtype, np.floating) and not np.all(
        np.isfinite(value)):
      raise CheckpointError(f"{path}: {key} holds NaN or inf")
    restored.append(value)
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


def check_run_directory(directory: str) -> None:
  """Refuses, in one line, a place orbax cannot keep a run's checkpoints:
  called before a run takes its workdir, so nothing is created there."""
  if storage.scheme(directory) == "s3":
    raise CheckpointError(
        f"{directory}: orbax-checkpoint cannot write to s3:// (its paths "
        "library, etils.epath, has no S3 backend); put the workdir on gs:// "
        "or a mounted file system. s3:// serves data, init_from and "
        "apply/evaluate files")


def _use_thread_safe_barriers() -> None:
  """Has orbax sync hosts through the coordination service's barriers.

  Its default barrier is a device collective, and it syncs from its
  background save threads too: such a collective then pairs, across hosts,
  with the wrong one of the main thread's (the training step's, or our
  stop decision's). Seen on two CPU processes: the stop decision read
  differently by the two hosts, then a barrier-name mismatch. The
  coordination service's barriers are safe from any thread.
  """
  flags.FLAGS["experimental_orbax_use_distributed_barrier"].parse(True)


class CheckpointManager:
  """A run's last `keep` checkpoints, through orbax-checkpoint, and its best
  network as one `.npz` file.

  Files: `DIR/ckpt_<step>/` and `DIR/best.npz`. Every process calls `save`
  and `restore_latest` (orbax coordinates the hosts: one writes what all
  share); with `async_save` a save returns once the arrays are copied, and
  writes in the background. `close` waits for the last save.
  """

  def __init__(self, directory: str, keep: int = 3, async_save: bool = True):
    check_run_directory(directory)
    self.directory = directory
    if jax.process_count() > 1:
      _use_thread_safe_barriers()
    self._orbax = ocp.CheckpointManager(
        _for_orbax(directory), item_names=(_STATE, _METADATA),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max(1, keep), step_name_format=_STEP_NAMES,
            enable_async_checkpointing=async_save, create=True))

  @property
  def best_path(self) -> str:
    return storage.join(self.directory, "best.npz")

  def steps(self) -> List[int]:
    return complete_steps(self.directory)

  def latest_path(self) -> Optional[str]:
    return latest_step_directory(self.directory)

  def refuse_npz_steps(self) -> None:
    """A workdir of glassy_jax 0.2 holds `ckpt-<step>.npz` files, which
    orbax does not list: one line, rather than a silent fresh start."""
    older = sorted(name for name in storage.listdir(self.directory)
                   if _NPZ_STEP_FILE.fullmatch(name))
    if older and not self.steps():
      raise CheckpointError(
          f"{self.directory}: holds checkpoints of glassy_jax 0.2 "
          f"({older[-1]}, ...), which this version does not resume from; "
          "start a new workdir, with --config.init_from=" +
          storage.join(self.directory, "best.npz") + " to keep the network")

  def _path(self, step: int) -> str:
    return _step_directory(self.directory, step)

  def restore_latest(self, template: Any
                     ) -> Tuple[Any, CheckpointMetadata, str]:
    """The newest checkpoint that reads into `template`, and its path. An
    unreadable one (damaged files, wrong shapes, non-finite values) is
    renamed aside to `NAME.damaged`, kept, with a warning saying why, and
    the next older one is tried; none readable is an error."""
    self.wait()
    damaged = []
    for step in reversed(self.steps()):
      path = self._path(step)
      try:
        tree, metadata = restore(path, template)
      except CheckpointError as e:
        damaged.append(self._set_aside(path))
        logging.warning("skipping %s, kept as %s: %s", path, damaged[-1], e)
        continue
      if damaged:
        logging.warning("resuming from the older %s", path)
      return tree, metadata, path
    raise CheckpointError(
        f"{self.directory}: no readable checkpoint to resume from"
        + (f" (damaged ones kept as {', '.join(damaged)})" if damaged else ""))

  def _set_aside(self, path: str) -> str:
    """Renames `path` to `path.damaged` (process 0; the others wait)."""
    aside = path + ".damaged"
    if jax.process_index() == 0:
      storage.rename(path, aside)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"set aside {path}")
    self._orbax.reload()  # Its own list, which keep-N deletes from.
    return aside

  def save(self, step: int, tree: Any, metadata: CheckpointMetadata) -> str:
    """Saves step `step` (every process calls this); the oldest beyond
    `keep` are deleted once it is complete."""
    self._orbax.save(step, args=ocp.args.Composite(**{
        _STATE: ocp.args.StandardSave(_flatten(tree)),
        _METADATA: ocp.args.JsonSave(
            dataclasses.replace(metadata, step=step).to_json())}),
                     force=True)
    return self._path(step)

  def save_best(self, step: int, tree: Any,
                metadata: CheckpointMetadata) -> None:
    """Writes `best.npz` (call it from one process)."""
    save(self.best_path, tree, dataclasses.replace(metadata, step=step))

  def wait(self) -> None:
    """Returns once the background save, if any, is complete."""
    self._orbax.wait_until_finished()

  def close(self) -> None:
    self._orbax.close()

  def __enter__(self) -> "CheckpointManager":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def load_tf(prefix: str, time_index: int = 0
            ) -> Tuple[Dict[str, Dict[str, np.ndarray]], CheckpointMetadata]:
  """Haiku parameters of a TensorFlow checkpoint of DeepMind's network, and
  metadata saying what they are (trained at `time_index`)."""
  return tf_checkpoint.load_bapst(prefix), CheckpointMetadata(
      model=model_config.ModelConfig(), time_index=time_index,
      source=tf_checkpoint.source(prefix))


def load_params(path: str) -> Tuple[Dict[str, Dict[str, np.ndarray]],
                                    CheckpointMetadata]:
  """Haiku parameters and metadata of a checkpoint: any form `load` reads
  (a `.npz`, a run's step or checkpoints directory, a bundled name), or a
  TF prefix (`load_tf`).

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
