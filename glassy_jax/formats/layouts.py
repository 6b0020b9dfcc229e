"""Dataset directories in the field's three layouts, read as one kind of system.

Wherever a data directory is accepted, its layout is recognised from the file
names of its `train/` (or other split) folder:

* DeepMind's (Bapst et al. 2020): `DIR/split/aggregated*`, pickles or their
  `.npz` twin (`glassy_jax.formats.data`), one system per file.
* Shiba et al.'s (BOTAN, J. Chem. Phys. 158, 084503 (2023)):
  `DIR/split/isoconfig_N{N}T{T}_{id}_tc{NN}.npz`, one file per configuration
  and time point with `types`, `initial_positions` and `positions`
  [runs, N, 3] (unwrapped) at that time. The files of one configuration id
  form one system and time index NN is time point `tcNN`; the runs'
  displacements are kept (BOTAN's bond targets, `glassy_jax.physics.bond_targets`).
* GlassBench's (Jung et al., "Roadmap on machine learning glassy dynamics"):
  `DIR/split/N{N}T{T}_{id}.npz`, one file per configuration with `types`,
  `initial_positions`, propensities `md_prop` [times, N], optionally its
  inherent structure (`inherent_positions` or `is_positions`) and, in test
  files, other models' predictions: every other [times, N] array but
  `bb_prop` (bond-breaking propensity, not this network's target), kept as
  `field_predictions` by key.

Neither of the last two stores its box: their systems are cubic at number
density 1.2 (`FIELD_DENSITY`) unless a `box` array is present. Each becomes
the system dict of `glassy_jax.formats.data` (targets per time index, None where a
time point is absent; temperature in `metadata`), so everything downstream
reads one format.
"""

import os
import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from glassy_jax.formats import data
from glassy_jax.formats import storage

FIELD_DENSITY = 1.2
_SHIBA = re.compile(r"isoconfig_N(\d+)T([0-9.]+?)_(\d+)_tc(\d+|\*)\.npz$")
_GLASSBENCH = re.compile(r"N(\d+)T([0-9.]+?)_(\d+)\.npz$")
_SHIBA_KEYS = ("types", "initial_positions", "positions")
_GLASSBENCH_KEYS = ("types", "initial_positions", "md_prop")
_INHERENT_KEYS = ("inherent_positions", "is_positions")
_NOT_PREDICTIONS = ("md_prop", "bb_prop")


def _shiba_pattern(directory: str, name: str) -> str:
  """The glob of every time point of the configuration of file `name`."""
  n, temperature, identity, _ = _SHIBA.search(name).groups()
  return storage.join(directory, f"isoconfig_N{n}T{temperature}_{identity}"
                      "_tc*.npz")


def list_files(directory: str, split: str,
               max_files: Optional[int] = None) -> List[str]:
  """The systems of `DIR/split` in order, at most `max_files`: DeepMind's
  files, GlassBench's files, or per Shiba configuration the glob of its
  time points (configurations in numerical order of their ids)."""
  folder = storage.join(directory, split)
  names = storage.listdir(folder)
  deepmind = [storage.join(folder, n) for n in names
              if n.startswith("aggregated")]
  shiba = [n for n in names if _SHIBA.search(n)]
  glassbench = [n for n in names if _GLASSBENCH.fullmatch(n)]
  if deepmind:
    files = deepmind
  elif shiba:
    by_id = {int(_SHIBA.search(n).group(3)): _shiba_pattern(folder, n)
             for n in shiba}
    files = [by_id[k] for k in sorted(by_id)]
  elif glassbench:
    files = [storage.join(folder, n) for n in sorted(
        glassbench, key=lambda n: int(_GLASSBENCH.fullmatch(n).group(3)))]
  else:
    raise data.DataError(
        f"no dataset files in {folder}: expected DeepMind's aggregated*, "
        "Shiba et al.'s isoconfig_N*T*_*_tc*.npz or GlassBench's "
        "N*T*_*.npz")
  return files[:max_files] if max_files else files


def load_system(path: str) -> Dict[str, Any]:
  """One system of any layout, as `glassy_jax.formats.data`'s dict (checked)."""
  name = os.path.basename(path)
  if _SHIBA.search(name):
    system = _load_shiba(path)
  elif _GLASSBENCH.fullmatch(name):
    system = _load_glassbench(path)
  else:
    return data.load_system(path)
  data.validate_system(system, path)
  return system


def load_snapshot(path: str, time_index: data.TimeIndex,
                  with_runs: bool = False) -> data.Snapshot:
  """One system of any layout, keeping only structure and target (and with
  `with_runs` the runs' displacements, `data.to_snapshot`)."""
  return data.to_snapshot(load_system(path), time_index, path, with_runs)


def _read_npz(path: str, required: Tuple[str, ...]) -> Dict[str, np.ndarray]:
  """The arrays of `path`; a file without `required` names the keys it has."""
  if not storage.isfile(path):
    raise data.DataError(f"{path}: no such file")
  try:
    with storage.open_file(path, "rb") as f, np.load(
        f, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
  except Exception as e:  # Cut, damaged or not an npz: many error types.
    raise data.DataError(f"{path}: not a readable .npz file "
                         f"({type(e).__name__}: {e})") from None
  missing = [k for k in required if k not in arrays]
  if missing:
    raise data.DataError(
        f"{path}: missing key(s) {', '.join(missing)} (it has "
        f"{', '.join(sorted(arrays)) or 'no arrays'})")
  return arrays


def _box(arrays: Dict[str, np.ndarray], n: int) -> np.ndarray:
  if "box" in arrays:
    return np.asarray(arrays["box"], np.float64).reshape(-1)
  return np.full(3, (n / FIELD_DENSITY) ** (1 / 3))


def _structure(arrays: Dict[str, np.ndarray], temperature: str,
               path: str) -> Dict[str, Any]:
  """The keys every system has, from a field file's arrays."""
  positions = np.asarray(arrays["initial_positions"], np.float64)
  if positions.ndim != 2 or positions.shape[1] != 3:
    raise data.DataError(f"{path}: initial_positions must be [N, 3], got "
                         f"{positions.shape}")
  return {"positions": positions,
          "types": np.asarray(arrays["types"]).astype(np.int32),
          "box": _box(arrays, len(positions)),
          "metadata": {"temperature": float(temperature)}}


def _load_shiba(pattern: str) -> Dict[str, Any]:
  """A configuration's time points: `pattern` is one file or the glob of
  all (`list_files`). Targets are mean |r(t) - r(0)| over the runs."""
  paths = storage.glob(pattern) if "*" in pattern else [pattern]
  if not paths:
    raise data.DataError(f"{pattern}: no such files")
  system, targets, displacements, runs = None, {}, {}, {}
  for path in paths:
    arrays = _read_npz(path, _SHIBA_KEYS)
    match = _SHIBA.search(os.path.basename(path))
    structure = _structure(arrays, match.group(2), path)
    if system is None:
      system = structure
    elif not np.array_equal(structure["positions"], system["positions"]):
      raise data.DataError(f"{path}: initial_positions differ from those of "
                           f"{paths[0]} (one configuration's files)")
    final = np.asarray(arrays["positions"], np.float64)
    n = len(system["positions"])
    if final.ndim != 3 or final.shape[1:] != (n, 3):
      raise data.DataError(f"{path}: positions must be [runs, {n}, 3], got "
                           f"{final.shape}")
    time_point = int(match.group(4))
    targets[time_point] = data.propensity(system["positions"], list(final))
    displacements[time_point] = (final - system["positions"][None]).astype(
        np.float32)
    runs[time_point] = final.shape[0]
  if len(set(runs.values())) > 1:
    raise data.DataError(
        f"{pattern}: time points have different numbers of runs ("
        + ", ".join(f"tc{k:02d}: {v}" for k, v in sorted(runs.items()))
        + "); one isoconfigurational ensemble has the same runs at every "
        "time")
  system["targets"] = [targets.get(k) for k in range(max(targets) + 1)]
  system["displacements"] = [displacements.get(k)
                             for k in range(max(targets) + 1)]
  system["metadata"]["runs"] = next(iter(runs.values()))
  return system


def _load_glassbench(path: str) -> Dict[str, Any]:
  arrays = _read_npz(path, _GLASSBENCH_KEYS)
  system = _structure(arrays, _GLASSBENCH.fullmatch(
      os.path.basename(path)).group(2), path)
  n = len(system["positions"])
  propensities = np.asarray(arrays["md_prop"], np.float32)
  if propensities.ndim != 2 or propensities.shape[1] != n:
    raise data.DataError(f"{path}: md_prop must be [times, {n}], got "
                         f"{propensities.shape}")
  system["targets"] = list(propensities)
  for key in _INHERENT_KEYS:
    if key in arrays:
      inherent = np.asarray(arrays[key], np.float64)
      if inherent.shape != (n, 3):
        raise data.DataError(f"{path}: {key} must be [{n}, 3], got "
                             f"{inherent.shape}")
      system["inherent_positions"] = inherent
      break
  system["field_predictions"] = {
      key: np.asarray(value, np.float32) for key, value in arrays.items()
      if key not in _NOT_PREDICTIONS and np.shape(value) == propensities.shape}
  return system
