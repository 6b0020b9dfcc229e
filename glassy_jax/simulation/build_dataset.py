"""A dataset directory from many LAMMPS configurations, in one call.

Each configuration is a folder holding its equilibrated structure
(`start.data`) and its isoconfigurational runs (`run_*.dump`), as
examples/lammps/ writes them. `build_dataset` turns every one into a system
(`build_system.build_system_from_dumps`, with all of its checks), splits
them into train and test with a seeded shuffle, and writes DeepMind's layout

  OUTPUT/train/aggregated-000.pickle, OUTPUT/test/aggregated-003.pickle, ...

which training reads with `--config.data.directory=OUTPUT`. Beside it:
`summary.md`, what a person checks (per configuration: the runs, the frames,
and for each time index the time chosen, Fs there, the A particles' mean
displacement and the split-half correlation of the runs), `fs.png`, Fs(q, t)
of every configuration with the chosen times marked, and `build.json`, the
state that lets an interrupted build resume: a configuration whose file and
record exist, and whose inputs have not changed since, is not built again.
The program is `glassy_jax.programs.build_dataset`.
"""

import glob
import json
import os
import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from absl import logging
from matplotlib.figure import Figure
import numpy as np

from glassy_jax import progress as progress_lib
from glassy_jax.formats import atomic
from glassy_jax.formats import data
from glassy_jax.simulation import build_system
from glassy_jax.simulation import scattering

SUMMARY = "summary.md"
FIGURE = "fs.png"
STATE = "build.json"


class Configuration(NamedTuple):
  """One structure and its runs."""
  name: str  # The folder's name (unique in a dataset).
  folder: str
  initial: str
  runs: List[str]


def _natural_key(path: str):
  """run_2 before run_10."""
  return [int(part) if part.isdigit() else part
          for part in re.split(r"(\d+)", path)]


def find_configurations(patterns: Sequence[str],
                        initial_name: str = "start.data",
                        runs_pattern: str = "run_*.dump"
                        ) -> List[Configuration]:
  """The configuration folders `patterns` (globs) name: folders holding
  `initial_name`, or folders whose subfolders hold it."""
  folders = []
  for pattern in patterns:
    matches = sorted(glob.glob(pattern), key=_natural_key)
    if not matches:
      raise data.DataError(f"no folders match {pattern}")
    for match in matches:
      if not os.path.isdir(match):
        continue
      if os.path.isfile(os.path.join(match, initial_name)):
        folders.append(match)
        continue
      inside = sorted((os.path.join(match, name) for name in os.listdir(match)
                       if os.path.isfile(os.path.join(match, name,
                                                      initial_name))),
                      key=_natural_key)
      if not inside:
        raise data.DataError(f"{match}: no {initial_name} in it or in its "
                             "subfolders")
      folders += inside
  if not folders:
    raise data.DataError(f"{', '.join(patterns)}: no configuration folders "
                         f"(folders with {initial_name} inside)")
  configurations, seen = [], {}
  for folder in dict.fromkeys(os.path.normpath(f) for f in folders):
    name = os.path.basename(folder)
    if name in seen:
      raise data.DataError(f"{folder}: same folder name as {seen[name]}; "
                           "configurations need distinct names")
    seen[name] = folder
    runs = sorted(glob.glob(os.path.join(folder, runs_pattern)),
                  key=_natural_key)
    if not runs:
      raise data.DataError(f"{folder}: no runs match {runs_pattern}")
    configurations.append(Configuration(
        name, folder, os.path.join(folder, initial_name), runs))
  return configurations


def split(num: int, test_fraction: float, seed: int) -> List[str]:
  """'train' or 'test' for each of `num` configurations: a seeded shuffle,
  round(test_fraction * num) of them (at least one of each) for test."""
  if num < 2:
    raise data.DataError(f"{num} configuration: a train/test split needs "
                         "at least 2")
  if not 0 < test_fraction < 1:
    raise data.DataError(f"test fraction {test_fraction:g} must be between "
                         "0 and 1")
  num_test = min(num - 1, max(1, int(round(test_fraction * num))))
  test = set(np.random.default_rng(seed).permutation(num)[:num_test].tolist())
  return ["test" if k in test else "train" for k in range(num)]


def _sources(configuration: Configuration) -> List[List[Any]]:
  """What a built system depends on: each input's path, size and mtime."""
  rows = []
  for path in [configuration.initial, *configuration.runs]:
    stat = os.stat(path)
    rows.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
  return rows


def _load_state(path: str) -> Optional[Dict[str, Any]]:
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise data.DataError(f"{path}: unreadable build state ({e}); delete it "
                         "to build from scratch") from None


def _write_json(path: str, value: Any) -> None:
  with atomic.atomic_write(path, "w") as f:
    json.dump(value, f, indent=1)


def build_dataset(patterns: Sequence[str], output: str,
                  initial_name: str = "start.data",
                  runs_pattern: str = "run_*.dump",
                  test_fraction: float = 0.2, seed: int = 0,
                  target_times: Optional[Sequence[float]] = None,
                  dt: float = build_system.LJ_TIMESTEP,
                  start_timestep: Optional[int] = None,
                  temperature: float = float("nan"),
                  pressure: float = float("nan"),
                  q: float = build_system.SCATTERING_Q,
                  allow_partial: bool = False,
                  progress: bool = False) -> List[Dict[str, Any]]:
  """Builds OUTPUT/{train,test}/aggregated-NNN.pickle, summary and figure.

  Args: as `build_system.build_system_from_dumps`, plus `patterns` (globs
    of configuration folders, `find_configurations`), `initial_name` and
    `runs_pattern` (the files inside each), `test_fraction` and `seed` (the
    split).

  Returns: one record per configuration (what `summary.md` shows).
  """
  configurations = find_configurations(patterns, initial_name, runs_pattern)
  splits = split(len(configurations), test_fraction, seed)
  width = max(3, len(str(len(configurations) - 1)))
  options = {
      "configurations": [os.path.abspath(c.folder) for c in configurations],
      "initial": initial_name, "runs": runs_pattern,
      "test_fraction": test_fraction, "seed": seed,
      "times": None if target_times is None else [float(t)
                                                  for t in target_times],
      "dt": dt, "start_timestep": start_timestep,
      "temperature": None if np.isnan(temperature) else temperature,
      "pressure": None if np.isnan(pressure) else pressure,
      "q": q, "allow_partial": allow_partial}
  state_path = os.path.join(output, STATE)
  state = _load_state(state_path)
  if state is not None and state.get("options") != options:
    changed = sorted(k for k in options
                     if state.get("options", {}).get(k) != options[k])
    raise data.DataError(
        f"{output}: built before with other settings ({', '.join(changed)}"
        f"; see {state_path}); use another --output, or delete {output} to "
        "build it again")
  records = dict((state or {}).get("records", {}))
  todo = list(zip(configurations, splits))
  if progress:
    todo = progress_lib.bar(todo, desc="building", unit="configuration")
  for k, (configuration, where) in enumerate(todo):
    path = os.path.join(output, where, f"aggregated-{k:0{width}d}.pickle")
    sources = _sources(configuration)
    record = records.get(configuration.name)
    if (record is not None and record["sources"] == sources
        and os.path.exists(path)):
      logging.info("%s: built already (%s)", configuration.name, path)
      continue
    system, details = build_system.build_system_from_dumps(
        configuration.initial, configuration.runs,
        temperature=temperature, pressure=pressure, dt=dt,
        start_timestep=start_timestep, q=q, allow_partial=allow_partial,
        target_times=target_times)
    data.write_system(path, system)
    records[configuration.name] = _record(configuration, where, path, output,
                                          sources, system, details)
    _write_json(state_path, {"options": options, "records": records})
  rows = [records[c.name] for c in configurations]
  write_summary(os.path.join(output, SUMMARY), rows, options)
  write_figure(os.path.join(output, FIGURE), rows, q,
               by_time=target_times is not None)
  return rows


def _record(configuration: Configuration, where: str, path: str,
            output: str, sources: List[List[Any]], system: Dict[str, Any],
            details: build_system.Details) -> Dict[str, Any]:
  """What the summary and the figure need of one built system."""
  is_a = np.asarray(system["types"]) == 0
  points = []
  for i, (index, value) in enumerate(zip(system["time_indices"],
                                         system["is_values"])):
    points.append({
        "index": i, "frame": int(index),
        "time": float(system["time"][index]), "is_value": float(value),
        "fs": float(details.fs[index - 1]),
        "mean_displacement_a": float(
            data.system_targets(system, i, path)[is_a].mean()),
        "split_half_r": float(details.split_half[i])})
  return {
      "name": configuration.name, "folder": configuration.folder,
      "split": where, "file": os.path.relpath(path, output),
      "runs": details.runs, "frames": details.frames,
      "start_timestep": details.start_timestep,
      "atoms": int(len(system["positions"])),
      "points": points,
      "fs_curve": {"time": [float(t) for t in system["time"][1:]],
                   "fs": [float(f) for f in details.fs]},
      "sources": sources}


def write_summary(path: str, rows: Sequence[Dict[str, Any]],
                  options: Dict[str, Any]) -> None:
  """`summary.md`: the configurations, then each one's time points."""
  count = {s: sum(r["split"] == s for r in rows) for s in ("train", "test")}
  how = ("at the times given, " + ", ".join(f"{t:g}" for t in options["times"])
         if options["times"] else
         f"where Fs(q={options['q']:g}) of the A atoms, mean over the runs, "
         "first drops below 0.9, 0.8, ..., 0.1 and 1/e")
  lines = [
      "# Dataset summary", "",
      f"{len(rows)} configurations: {count['train']} train, {count['test']} "
      f"test (seed {options['seed']}, test fraction "
      f"{options['test_fraction']:g}). dt = {options['dt']:g}. Time points "
      f"{how}.", "",
      "| configuration | split | file | atoms | runs | frames per run "
      "| t = 0 at timestep |", "|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['name']} | {r['split']} | {r['file']} | {r['atoms']} "
                 f"| {r['runs']} | {r['frames']} | {r['start_timestep']} |")
  lines += ["", "Per time index: the IS value (the Fs it stands for, or Fs at "
            "the time given), the frame and time chosen, Fs there, the A "
            "particles' mean displacement (the mean target) and the "
            "split-half r (Pearson r of the A propensity of the even runs "
            "with the odd runs': how reproducible the target is).", "",
            "| configuration | index | IS value | frame | time | Fs there "
            "| mean displacement A | split-half r |",
            "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    for p in r["points"]:
      lines.append(
          f"| {r['name']} | {p['index']} | {p['is_value']:.3f} "
          f"| {p['frame']} | {p['time']:.4g} "
          f"| {p['fs']:.3f} | {p['mean_displacement_a']:.4f} "
          f"| {p['split_half_r']:.2f} |")
  with atomic.atomic_write(path, "w") as f:
    f.write("\n".join(lines) + "\n")


def write_figure(path: str, rows: Sequence[Dict[str, Any]], q: float,
                 by_time: bool = False) -> None:
  """Fs(q, t) of each configuration (log time), chosen times marked."""
  figure = Figure(figsize=(6.0, 4.5), dpi=150, layout="constrained")
  ax = figure.subplots()
  if not by_time:
    for value in scattering.IS_VALUES:
      ax.axhline(value, color="0.85", lw=0.8, zorder=0)
  for k, r in enumerate(rows):
    color = f"C{k % 10}"
    curve = r["fs_curve"]
    ax.plot(curve["time"], curve["fs"], color=color, lw=1.2,
            label=f"{r['name']} ({r['split']})")
    ax.plot([p["time"] for p in r["points"]], [p["fs"] for p in r["points"]],
            "o", color=color, ms=4, mfc="none")
  ax.set_xscale("log")
  ax.set_xlabel("t (LJ time)")
  ax.set_ylabel(f"Fs(q = {q:g}, t), A atoms")
  ax.set_title("Chosen time points (circles)", fontsize="medium")
  if len(rows) <= 12:
    ax.legend(fontsize="small")
  with atomic.atomic_write(path) as f:
    figure.savefig(f, format="png")
