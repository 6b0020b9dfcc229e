"""A system in DeepMind's format from LAMMPS trajectory dumps.

Users who run their own isoconfigurational ensembles in LAMMPS (one `dump`
per trajectory, all started from one structure) turn them into the
dataset's format here (`build_system_from_dumps`; the program is
`glassy_jax.programs.build_system`). The dump and data readers themselves
live in `glassy_jax.formats.lammps_io`, which `apply` shares. Every problem raises `glassy_jax.formats.data.DataError` with a
one-line message that names the file.
"""

from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.simulation import scattering

# Wavenumber of the first peak of the A-A structure factor (DeepMind's q).
SCATTERING_Q = 7.25
# LAMMPS's default MD timestep for `units lj`.
LJ_TIMESTEP = 0.005


def build_system_from_dumps(
    initial: str, trajectory_files: Sequence[str],
    times: Optional[Sequence[float]] = None,
    temperature: float = float("nan"), pressure: float = float("nan"),
    fluid: str = "Kob Andersen", dt: float = LJ_TIMESTEP,
    start_timestep: Optional[int] = None, q: float = SCATTERING_Q,
    allow_partial: bool = False) -> Dict[str, object]:
  """One system in DeepMind's format from isoconfigurational trajectories.

  Args:
    initial: dump or data file with the equilibrated structure.
    trajectory_files: one dump per trajectory started from `initial`, all
      with frames at the same timesteps; frames at or before
      `start_timestep` are not sampled (one at it supplies start velocities
      when it has vx vy vz).
    times: the simulated time of each sampled frame; default
      (timestep - start_timestep) * dt.
    temperature, pressure, fluid: stored in `metadata` (nan if unknown).
    dt: MD timestep used to turn timesteps into times.
    start_timestep: timestep of `initial` in the trajectories' clock;
      default the timestep `initial` records (0 for most data files).
    q: wavenumber of the self-intermediate scattering function Fs(q, t)
      (`scattering.self_scattering`: cos(q dr) averaged over the 3 axes).
    allow_partial: when the trajectories end before Fs reaches some of the
      10 values 0.9 ... 0.1, 1/e, keep only the reached ones (time index i
      then means `is_values[i]` of the file, not DeepMind's i-th value)
      instead of raising `DataError`.

  Returns:
    A dict `data.write_system` accepts. `time_indices[i]` is the first
    sampled frame (index into `time`, where `time[0] = 0` is `initial`) at
    which Fs of the A particles, averaged over trajectories, is below
    `is_values[i]`.
  """
  start = lammps_io.read_structure(initial)
  if not trajectory_files:
    raise data.DataError(f"{initial}: no trajectory files given")
  t0 = start.timestep if start_timestep is None else start_timestep
  # Pass 1 reads every frame for Fs; pass 2 keeps only the chosen ones, so
  # memory stays at 10 positions per trajectory however long the dumps are.
  timesteps, fs = _mean_self_scattering(start, trajectory_files, t0, q)
  indices, is_values = _time_indices(fs, q, allow_partial, trajectory_files)
  if times is None:
    time = [0.0] + [(step - t0) * dt for step in timesteps]
  elif len(times) != len(timesteps):
    raise data.DataError(f"{trajectory_files[0]}: {len(timesteps)} sampled "
                         f"frames but {len(times)} times given")
  else:
    time = [0.0] + [float(t) for t in times]
  targets, velocities = _positions_at(start, trajectory_files, t0,
                                      [timesteps[i - 1] for i in indices])
  system = {
      "positions": start.positions, "types": start.types, "box": start.box,
      "time": time, "time_indices": indices, "is_values": np.array(is_values),
      "trajectory_target_positions": targets,
      "metadata": {"temperature": float(temperature),
                   "pressure": float(pressure), "fluid": fluid},
  }
  if len(velocities) == len(trajectory_files):
    system["trajectory_start_velocities"] = velocities
  data.validate_system(system, initial)
  return system


def _follow(start: lammps_io.Frame, path: str
            ) -> Iterator[Tuple[lammps_io.Frame, np.ndarray]]:
  """Yields each frame of a trajectory with positions continuous from start.

  Unwrapped frames are chained exactly; wrapped ones (and the first frame,
  whose image convention may differ from `start`'s) by the minimum image,
  which assumes no atom moves half a box between consecutive frames.
  """
  position, previous = start.positions, None
  for frame in lammps_io.iter_dump(path):
    where = f"{path}: timestep {frame.timestep}"
    if not np.array_equal(frame.ids, start.ids):
      raise data.DataError(f"{where}: atom ids differ from the initial "
                           f"structure's ({len(frame.ids)} vs "
                           f"{len(start.ids)} atoms)")
    if not np.array_equal(frame.types, start.types):
      raise data.DataError(f"{where}: atom types differ from the initial "
                           "structure's")
    if not np.allclose(frame.box, start.box, rtol=1e-6, atol=0):
      raise data.DataError(f"{where}: box {frame.box} differs from the "
                           f"initial structure's {start.box}")
    if previous is not None and previous.unwrapped and frame.unwrapped:
      step = frame.positions - previous.positions
    else:
      step = frame.positions - (start.positions if previous is None
                                else previous.positions)
      step -= start.box * np.round(step / start.box)
    position = position + step
    previous = frame
    yield frame, position


def _mean_self_scattering(start: lammps_io.Frame, paths: Sequence[str], t0: int,
                          q: float) -> Tuple[List[int], np.ndarray]:
  """Sampled timesteps (after t0) and Fs(q, t) of A atoms over trajectories."""
  is_a = start.types == 0
  timesteps, total = None, 0.0
  for path in paths:
    steps, fs = [], []
    for frame, position in _follow(start, path):
      if frame.timestep > t0:
        steps.append(frame.timestep)
        fs.append(scattering.self_scattering(
            position[is_a] - start.positions[is_a], q))
    if not steps:
      raise data.DataError(f"{path}: no frame after timestep {t0} (the "
                           "initial structure's); set start_timestep")
    if timesteps is None:
      timesteps = steps
    elif steps != timesteps:
      raise data.DataError(f"{path}: timesteps differ from {paths[0]}'s")
    total = total + np.array(fs)
  return timesteps, total / len(paths)


def _time_indices(fs: np.ndarray, q: float, allow_partial: bool,
                  paths: Sequence[str]) -> Tuple[List[int], List[float]]:
  """First sampled frame (index into `time`) below each reached IS value."""
  reached = [v for v in scattering.IS_VALUES if fs.min() < v]
  missing = [f"{v:.3g}" for v in scattering.IS_VALUES if v not in reached]
  if missing and (not allow_partial or not reached):
    hint = "" if allow_partial else " (or pass --allow_partial)"
    raise data.DataError(
        f"{paths[0]} (+{len(paths) - 1} more): Fs(q={q:g}) of A atoms only "
        f"drops to {fs.min():.3f}, never below {', '.join(missing)}; run "
        f"longer trajectories{hint}")
  # Fs = 1 at time[0], the initial structure, so indices point into `time`.
  return scattering.time_indices(np.append(1.0, fs), reached), reached


def _positions_at(start: lammps_io.Frame, paths: Sequence[str], t0: int,
                  wanted: Sequence[int]
                  ) -> Tuple[List[List[np.ndarray]], List[np.ndarray]]:
  """Positions at `wanted` timesteps ([time][trajectory]) and t0 velocities."""
  by_step = {step: [] for step in wanted}
  velocities = []
  for path in paths:
    for frame, position in _follow(start, path):
      if frame.timestep == t0 and all(v in frame.extra
                                      for v in ("vx", "vy", "vz")):
        velocities.append(np.stack(
            [frame.extra[v] for v in ("vx", "vy", "vz")], axis=1))
      if frame.timestep in by_step:
        by_step[frame.timestep].append(position)
      if frame.timestep >= max(wanted):
        break
  return [by_step[step] for step in wanted], velocities
