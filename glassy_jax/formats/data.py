"""Glassy-dynamics systems on disk: DeepMind's pickle format and its `.npz` twin.

A *system* is one equilibrated configuration with its isoconfigurational
ensemble, stored as the dict DeepMind published (`docs/specification.md`,
"Dataset format"): `positions`, `types`, `box`, `time`, `time_indices`,
`is_values`, `metadata` and either `trajectory_target_positions`
(+ `trajectory_start_velocities`) or precomputed `targets`.

Pickles are read with a restricted unpickler (a hostile pickle runs code when
loaded with `pickle.load`); training keeps only a `Snapshot` per file, so a
400-file dataset never holds its trajectories in memory at once. A dataset
becomes its `.npz` form with `convert_to_npz` (the program
`glassy_jax.programs.convert_data`).
"""

import io
import os
import pickle
from typing import (IO, Any, Dict, List, NamedTuple, Optional, Sequence,
                    Union)

import numpy as np

from glassy_jax import errors
from glassy_jax import progress as progress_lib
from glassy_jax.formats import atomic
from glassy_jax.formats import storage

# DeepMind's time indices 0..9: IS = 0.9, 0.8, ..., 0.1 and 1/e.
NUM_TIME_INDICES = 10
REQUIRED_KEYS = ("positions", "types", "box")


class DataError(errors.UserError, ValueError):
  """A dataset file is missing, malformed or inconsistent (one-line message)."""


class Snapshot(NamedTuple):
  """What the model needs from one system: structure and (optional) target."""
  positions: np.ndarray  # [N, 3] float64, absolute (possibly unwrapped).
  types: np.ndarray  # [N] int32, 0 = A, 1 = B.
  box: np.ndarray  # [3] float64, periodic box lengths.
  # [N] float32 propensity, [N, K] at K time indices (joint model), or None.
  targets: Optional[np.ndarray]
  name: str = ""  # Where it came from, for messages and reports.
  # [N, 3] its inherent structure, when the file carries one (GlassBench's).
  inherent_positions: Optional[np.ndarray] = None
  # [runs, N, 3] each run's displacement r(t) - r(0) at the time index, when
  # asked for and the file has the runs (`to_snapshot`).
  displacements: Optional[np.ndarray] = None


# ---------------------------------------------------------------- unpickling
_ALLOWED_GLOBALS = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "float"),
    ("builtins", "int"), ("builtins", "complex"), ("builtins", "bytes"),
    ("builtins", "bytearray"), ("builtins", "str"), ("builtins", "bool"),
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _Refused(pickle.UnpicklingError):
  """A pickle names a global outside the dataset format (hostile or foreign)."""


class _RestrictedUnpickler(pickle.Unpickler):
  """Admits only containers, numbers, strings and numpy arrays/dtypes."""

  def find_class(self, module, name):
    if (module, name) in _ALLOWED_GLOBALS:
      return super().find_class(module, name)
    raise _Refused(
        f"refusing to load '{module}.{name}': not part of the dataset format")


def _restricted_loads(data: bytes) -> Any:
  return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


# --------------------------------------------------------------- reading files
def load_system(path: str) -> Dict[str, Any]:
  """Reads one system (pickle or `.npz`) and checks its structure."""
  if not storage.isfile(path):
    raise DataError(f"{path}: no such file")
  try:
    raw = storage.read_bytes(path)
  except OSError as e:
    raise DataError(f"{path}: unreadable ({e.strerror or e})") from None
  try:
    system = (_load_npz(io.BytesIO(raw)) if path.endswith(".npz")
              else _restricted_loads(raw))
  except _Refused as e:
    raise DataError(f"{path}: {e}") from None
  except Exception as e:  # Other formats and cut files fail in many ways.
    raise DataError(_unparsable(path, raw[:2], e)) from None
  validate_system(system, path)
  return system


def _unparsable(path: str, head: bytes, error: Exception) -> str:
  """Says in words what the parsers do not ("Memo value not found at index
  101" is what a text file gives): empty, damaged, or not a system file.
  `head`: the file's first two bytes."""
  detail = " ".join(f"{type(error).__name__}: {error}".split())
  if not head:
    return f"{path}: empty file, not a pickle or .npz system file"
  if head.startswith(b"PK" if path.endswith(".npz") else b"\x80"):
    return f"{path}: damaged or truncated ({detail})"
  return f"{path}: not a pickle or .npz system file ({detail})"


def _load_npz(f: IO[bytes]) -> Dict[str, Any]:
  """The `.npz` form: flat arrays, trajectories stacked as [T, K, N, 3]."""
  with np.load(f, allow_pickle=False) as z:
    system = {k: z[k] for k in z.files}
  meta = {k[len("metadata_"):]: system.pop(k).item()
          for k in list(system) if k.startswith("metadata_")}
  system["metadata"] = meta
  for key in ("time", "time_indices"):
    if key in system:
      system[key] = system[key].tolist()
  if "trajectory_target_positions" in system:
    system["trajectory_target_positions"] = [
        list(t) for t in system["trajectory_target_positions"]]
  if "trajectory_start_velocities" in system:
    system["trajectory_start_velocities"] = list(
        system["trajectory_start_velocities"])
  if "targets" in system:
    system["targets"] = list(system["targets"])
  return system


def validate_system(system: Any, path: str) -> None:
  """Raises `DataError` naming the first problem found in `system`."""
  if not isinstance(system, dict):
    raise DataError(f"{path}: expected a dict, found {type(system).__name__}")
  missing = [k for k in REQUIRED_KEYS if k not in system]
  if missing:
    raise DataError(f"{path}: missing key(s) {', '.join(missing)}")
  positions = np.asarray(system["positions"])
  types = np.asarray(system["types"])
  box = np.asarray(system["box"], dtype=np.float64)
  if positions.ndim != 2 or positions.shape[1] != 3 or not len(positions):
    raise DataError(f"{path}: positions must be [N, 3], got {positions.shape}")
  n = positions.shape[0]
  if types.shape != (n,):
    raise DataError(f"{path}: types has shape {types.shape}, expected ({n},)")
  if not np.all(np.isfinite(positions)):
    raise DataError(f"{path}: positions contain NaN or inf")
  if not np.all(np.isin(types, (0, 1))):
    raise DataError(f"{path}: types must be 0 (A) or 1 (B), found "
                    f"{sorted(set(np.unique(types).tolist()) - {0, 1})}")
  if box.shape != (3,) or not np.all(np.isfinite(box)) or np.any(box <= 0):
    raise DataError(f"{path}: box must be 3 positive lengths, got {box}")
  if "targets" in system:
    # None: no time point at that index (Shiba et al.'s files).
    targets = [t for t in system["targets"] if t is not None]
    if any(np.shape(t) != (n,) for t in targets):
      raise DataError(f"{path}: every entry of targets must have shape ({n},)")
    if not all(np.all(np.isfinite(t)) for t in targets):
      raise DataError(f"{path}: targets contain NaN or inf")
  elif "trajectory_target_positions" in system:
    for per_time in system["trajectory_target_positions"]:
      if any(np.shape(p) != (n, 3) for p in per_time):
        raise DataError(
            f"{path}: trajectory positions must have shape ({n}, 3)")


def num_targets(system: Dict[str, Any]) -> int:
  """How many time indices the system has targets for (0 if none)."""
  if "targets" in system:
    return len(system["targets"])
  return len(system.get("trajectory_target_positions", ()))


def propensity(initial_positions: np.ndarray,
               trajectory_positions: Sequence[np.ndarray]) -> np.ndarray:
  """Mean over trajectories of |r_i(t) - r_i(0)|: DeepMind's target, [N] f32."""
  displacement = np.stack(trajectory_positions) - initial_positions[None]
  return np.linalg.norm(displacement, axis=-1).mean(axis=0).astype(np.float32)


def available_time_indices(system: Dict[str, Any]) -> List[int]:
  """The time indices the system has targets at, in order."""
  if "targets" in system:
    return [k for k, t in enumerate(system["targets"]) if t is not None]
  return list(range(num_targets(system)))


def system_targets(system: Dict[str, Any], time_index: int,
                   path: str = "") -> np.ndarray:
  """The propensity at `time_index`, precomputed or from the trajectories."""
  available = available_time_indices(system)
  if time_index not in available:
    if len(available) < num_targets(system):  # Time points with gaps.
      raise DataError(f"{path}: no time point at time index {time_index} "
                      "(it has "
                      + ", ".join(f"tc{k:02d}" for k in available) + ")")
    raise DataError(f"{path}: time index {time_index} out of range "
                    f"(the file has {len(available)} time indices)")
  if "targets" in system:
    return np.asarray(system["targets"][time_index], dtype=np.float32)
  return propensity(np.asarray(system["positions"], np.float64),
                    system["trajectory_target_positions"][time_index])


# Which targets to read: none, one time index ([N]) or several ([N, K]).
TimeIndex = Union[None, int, Sequence[int]]


def system_time(system: Dict[str, Any], time_index: int) -> float:
  """The time of `time_index` (`time[time_indices[k]]`), NaN if not stored."""
  try:
    return float(system["time"][int(system["time_indices"][time_index])])
  except (KeyError, IndexError, TypeError):
    return float("nan")


def _run_displacements(system: Dict[str, Any], time_index: int,
                       path: str) -> np.ndarray:
  """[runs, N, 3] float32 displacements of every isoconfigurational run at
  `time_index` (checked by `to_snapshot`): from the runs' final positions
  (DeepMind's full files) or as Shiba et al.'s files give them
  (`layouts`)."""
  if system.get("displacements") is not None:
    runs = system["displacements"][time_index]
  elif "trajectory_target_positions" in system:
    runs = (np.stack(system["trajectory_target_positions"][time_index])
            - np.asarray(system["positions"], np.float64)[None])
  else:
    raise DataError(
        f"{path}: has propensities only, not the runs' positions that bond "
        "targets need (Shiba et al.'s files and DeepMind's full files have "
        "them)")
  return np.asarray(runs, np.float32)


def to_snapshot(system: Dict[str, Any], time_index: TimeIndex,
                name: str = "", with_runs: bool = False) -> Snapshot:
  """Targets [N] at one time index, [N, K] at a sequence of K, or none;
  with `with_runs`, the runs' displacements at the one time index."""
  if with_runs and (time_index is None or np.ndim(time_index) != 0):
    raise ValueError("the runs' displacements are read at one time index, "
                     f"got {time_index!r}")
  if time_index is None:
    targets = None
  elif np.ndim(time_index) == 0:
    targets = system_targets(system, time_index, name)
  else:
    targets = np.stack([system_targets(system, k, name) for k in time_index],
                       axis=-1)
  return Snapshot(
      positions=np.asarray(system["positions"], np.float64),
      types=np.asarray(system["types"], np.int32),
      box=np.asarray(system["box"], np.float64),
      targets=targets, name=name,
      inherent_positions=system.get("inherent_positions"),
      displacements=(_run_displacements(system, time_index, name)
                     if with_runs else None))


# --------------------------------------------------------------- writing files
def write_system(path: str, system: Dict[str, Any]) -> None:
  """Writes a system atomically (temp file + rename): `.npz` or pickle v3."""
  validate_system(system, path)
  with atomic.atomic_write(path) as f:
    if path.endswith(".npz"):
      np.savez(f, **_npz_arrays(system))
    else:
      pickle.dump(system, f, protocol=3)


def _npz_arrays(system: Dict[str, Any]) -> Dict[str, np.ndarray]:
  arrays = {}
  for key, value in system.items():
    if key == "metadata":
      for mkey, mvalue in value.items():
        arrays[f"metadata_{mkey}"] = np.asarray(mvalue)
    else:
      arrays[key] = np.asarray(value)
  return arrays


def convert_to_npz(input_directory: str, output_directory: str,
                   progress: bool = False) -> List[str]:
  """Writes every `{train,test}/aggregated*` system as `.npz` (no pickle)."""
  sources = [path for split in ("train", "test") for path in
             storage.glob(storage.join(input_directory, split,
                                       "aggregated*"))]
  if not sources:
    raise DataError(f"no files match {input_directory}/{{train,test}}/"
                    "aggregated*")
  if progress:
    sources = progress_lib.bar(sources, desc="converting", unit="file")
  written = []
  for path in sources:
    split = os.path.basename(os.path.dirname(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    target = storage.join(output_directory, split, stem + ".npz")
    write_system(target, load_system(path))
    written.append(target)
  return written

