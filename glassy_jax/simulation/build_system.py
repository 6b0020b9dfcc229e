"""A system in DeepMind's format from LAMMPS trajectory dumps.

Users who run their own isoconfigurational ensembles in LAMMPS (one `dump`
per trajectory, all started from one structure) turn them into the
dataset's format here (`build_system_from_dumps`; the program is
`glassy_jax.programs.build_system`, and `build_dataset` does many
structures at once). The dump and data readers themselves live in
`glassy_jax.formats.lammps_io`, which `apply` shares.

Nothing is silently wrong. Every problem raises
`glassy_jax.formats.data.DataError` with a one-line message that names the
file:
* the runs' clock must be tied to the initial structure: when the first
  frame of every run equals it (to the dump's print precision, modulo the
  box), that frame is t = 0 whatever the timesteps of the data file and the
  dumps say; otherwise `--start_timestep` must say which timestep it is (and
  a frame at that timestep must equal it);
* every run has frames at the same timesteps (the message tells a different
  cadence from a different length), with increasing timesteps;
* the same atoms, types and box in every frame;
* wrapped coordinates are followed by the minimum image, so no atom may
  seem to move near half a box between frames;
* a dump that records `ITEM: TIME` must agree with `dt`.
Fewer than `MIN_RUNS` runs is allowed, with a warning that states how noisy
the propensity is: the correlation of the two halves of the runs.
"""

from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.simulation import scattering

# Wavenumber of the first peak of the A-A structure factor (DeepMind's q).
SCATTERING_Q = 7.25
# LAMMPS's default MD timestep for `units lj`.
LJ_TIMESTEP = 0.005
# A frame is the initial structure when each coordinate agrees with it,
# modulo the box, within this fraction of max(|coordinate|, box length):
# LAMMPS dumps print 6 significant digits (error <= 5e-6 of the value),
# while one MD step (dt = 0.005, T = 0.8) moves atoms by ~3e-3 box lengths.
SAME_STRUCTURE_TOLERANCE = 2e-5
# Wrapped coordinates are followed by the minimum image; an apparent step
# above this fraction of the box means the dumps are too sparse for it
# (displacements that wrapped around look uniform on [-L/2, L/2]).
MAX_WRAPPED_STEP = 0.4
# Runs per structure below which the propensity gets a noise warning
# (DeepMind used 30).
MIN_RUNS = 10


class Details(NamedTuple):
  """What `build_system_from_dumps` saw besides the system itself."""
  start_timestep: int  # The runs' timestep of the initial structure (t0).
  first_frame_is_initial: bool  # t0 found by comparing frames, not given.
  timesteps: List[int]  # Sampled frames after t0, as in `time[1:]`.
  fs: np.ndarray  # [len(timesteps)] Fs(q, t) of A atoms, mean over runs.
  frames: int  # Frames per run (t0's included when dumped).
  runs: int
  # [time indices] Pearson r of the A atoms' propensity from the even runs
  # with that from the odd runs (nan with 1 run).
  split_half: np.ndarray


def build_system_from_dumps(
    initial: str, trajectory_files: Sequence[str],
    times: Optional[Sequence[float]] = None,
    temperature: float = float("nan"), pressure: float = float("nan"),
    fluid: str = "Kob Andersen", dt: float = LJ_TIMESTEP,
    start_timestep: Optional[int] = None, q: float = SCATTERING_Q,
    allow_partial: bool = False,
    target_times: Optional[Sequence[float]] = None
) -> Tuple[Dict[str, object], Details]:
  """One system in DeepMind's format from isoconfigurational trajectories,
  and what was seen on the way (`Details`, which `build_dataset`'s summary
  shows).

  Args:
    initial: dump or data file with the equilibrated structure.
    trajectory_files: one dump per trajectory started from `initial`, all
      with frames at the same (increasing) timesteps.
    times: the simulated time of each sampled frame (after t0); default
      (timestep - t0) * dt.
    temperature, pressure, fluid: stored in `metadata` (nan if unknown).
    dt: MD timestep used to turn timesteps into times.
    start_timestep: t0, the trajectories' timestep of `initial`. Default:
      the timestep of the runs' first frame, which must then equal `initial`
      in every run (the timestep `initial` records is not used: `write_data`
      keeps the one it was written at). Frames after t0 are sampled; the
      frame at t0, if any, must equal `initial` and supplies the start
      velocities (when it has vx vy vz).
    q: wavenumber of the self-intermediate scattering function Fs(q, t)
      (`scattering.self_scattering`: cos(q dr) averaged over the 3 axes).
    allow_partial: when the trajectories end before Fs reaches some of the
      10 values 0.9 ... 0.1, 1/e, keep only the reached ones (time index i
      then means `is_values[i]` of the file, not DeepMind's i-th value)
      instead of raising `DataError`.
    target_times: choose the time points by time instead of by Fs: time
      index i is the first sampled frame at or after `target_times[i]`, and
      `is_values[i]` is Fs there.

  Returns:
    (system, details): `system` is a dict `data.write_system` accepts, in
    which `time_indices[i]` is the first sampled frame (index into `time`,
    where `time[0] = 0` is `initial`) at which Fs of the A particles,
    averaged over trajectories, is below `is_values[i]`.
  """
  start = lammps_io.read_structure(initial)
  if not trajectory_files:
    raise data.DataError(f"{initial}: no trajectory files given")
  if start_timestep is None:
    t0 = _start_timestep(initial, start, trajectory_files)
  else:
    t0 = int(start_timestep)
    _check_given_start_timestep(initial, start, trajectory_files, t0)
  # Pass 1 reads every frame for Fs; pass 2 keeps only the chosen ones, so
  # memory stays at 10 positions per trajectory however long the dumps are.
  timesteps, fs, frames = _mean_self_scattering(
      initial, start, trajectory_files, t0, q, dt if times is None else None)
  if times is None:
    time = [0.0] + [(step - t0) * dt for step in timesteps]
  elif len(times) != len(timesteps):
    raise data.DataError(f"{trajectory_files[0]}: {len(timesteps)} sampled "
                         f"frames but {len(times)} times given")
  else:
    time = [0.0] + [float(t) for t in times]
    if np.any(np.diff(time) <= 0):
      raise data.DataError(f"{trajectory_files[0]}: the times given must "
                           "increase from above 0")
  if target_times is None:
    indices, is_values = _time_indices(fs, q, allow_partial, trajectory_files)
  else:
    indices, is_values = _indices_at_times(time, fs, target_times,
                                           trajectory_files)
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
  split_half = split_half_correlation(system)
  _warn_if_few_runs(initial, len(trajectory_files), split_half, is_values)
  details = Details(start_timestep=t0,
                    first_frame_is_initial=start_timestep is None,
                    timesteps=timesteps, fs=fs, frames=frames,
                    runs=len(trajectory_files), split_half=split_half)
  return system, details


# ------------------------------------------------------------------ the clock
def structure_offset(frame: lammps_io.Frame, start: lammps_io.Frame
                     ) -> float:
  """How far `frame` is from `start`, modulo the box, in units of the
  tolerance `SAME_STRUCTURE_TOLERANCE * max(|coordinate|, box length)`:
  at most 1 when `frame` is `start` as a dump prints it."""
  step = frame.positions - start.positions
  step -= start.box * np.round(step / start.box)
  scale = np.maximum(np.maximum(np.abs(frame.positions),
                                np.abs(start.positions)), start.box)
  return float(np.max(np.abs(step) / (SAME_STRUCTURE_TOLERANCE * scale)))


def _first_frame(path: str) -> lammps_io.Frame:
  frame = next(lammps_io.iter_dump(path), None)
  if frame is None:
    raise data.DataError(f"{path}: no frames")
  return frame


def _start_timestep(initial: str, start: lammps_io.Frame,
                    paths: Sequence[str]) -> int:
  """The timestep of the runs' first frame, which must be `start` in every
  run; otherwise one line naming the mismatch and `--start_timestep`."""
  t0 = None
  for path in paths:
    first = _first_frame(path)
    _check_same_atoms(first, start, f"{path}: timestep {first.timestep}")
    offset = structure_offset(first, start)
    if offset > 1:
      recorded = (f"; {initial} records timestep {start.timestep}"
                  if start.timestep != first.timestep else "")
      distance = offset * SAME_STRUCTURE_TOLERANCE * float(start.box.max())
      raise data.DataError(
          f"{path}: its first frame (timestep {first.timestep}) is not the "
          f"initial structure {initial} (atoms up to ~{distance:.2g} away"
          f"{recorded}), so the runs' clock cannot be tied to it: pass "
          "--start_timestep=the runs' timestep of the initial structure "
          "(0 after `reset_timestep 0`), or dump the first frame (`dump_modify"
          " first yes`)")
    if t0 is None:
      t0 = first.timestep
  if start.timestep != t0:
    logging.info("%s: the runs' first frame is the initial structure: it is "
                 "t = 0 (timestep %d; the file records %d)", initial, t0,
                 start.timestep)
  return t0


def _check_given_start_timestep(initial: str, start: lammps_io.Frame,
                                paths: Sequence[str], t0: int) -> None:
  """A `start_timestep` that contradicts a first frame equal to `start`."""
  for path in paths:
    first = _first_frame(path)
    if (first.timestep != t0 and len(first.ids) == len(start.ids)
        and np.array_equal(first.ids, start.ids)
        and structure_offset(first, start) <= 1):
      raise data.DataError(
          f"{path}: its first frame (timestep {first.timestep}) is the "
          f"initial structure {initial}, but --start_timestep={t0}: leave "
          "--start_timestep unset (or set it to "
          f"{first.timestep})")


# ------------------------------------------------------------------ reading
def _check_same_atoms(frame: lammps_io.Frame, start: lammps_io.Frame,
                      where: str) -> None:
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


def _follow(start: lammps_io.Frame, path: str
            ) -> Iterator[Tuple[lammps_io.Frame, np.ndarray]]:
  """Yields each frame of a trajectory with positions continuous from start.

  Unwrapped frames are chained exactly; wrapped ones (and the first frame,
  whose image convention may differ from `start`'s) by the minimum image,
  which assumes no atom moves half a box between consecutive frames: an
  apparent step above `MAX_WRAPPED_STEP` boxes is refused.
  """
  position, previous = start.positions, None
  for frame in lammps_io.iter_dump(path):
    where = f"{path}: timestep {frame.timestep}"
    _check_same_atoms(frame, start, where)
    if previous is not None and frame.timestep <= previous.timestep:
      raise data.DataError(
          f"{where} follows timestep {previous.timestep}: timesteps must "
          "increase (several runs appended to one file? write one file per "
          "run)")
    if previous is not None and previous.unwrapped and frame.unwrapped:
      step = frame.positions - previous.positions
    else:
      step = frame.positions - (start.positions if previous is None
                                else previous.positions)
      step -= start.box * np.round(step / start.box)
      largest = float(np.max(np.abs(step) / start.box))
      if largest > MAX_WRAPPED_STEP:
        since = ("the initial structure" if previous is None
                 else f"timestep {previous.timestep}")
        raise data.DataError(
            f"{where}: an atom moved {largest:.2f} box lengths since {since} "
            "by the minimum image: wrapped coordinates dumped this sparsely "
            "cannot be followed; dump unwrapped xu yu zu (or x y z ix iy iz),"
            " or dump more often")
    position = position + step
    previous = frame
    yield frame, position


def _mean_self_scattering(initial: str, start: lammps_io.Frame,
                          paths: Sequence[str], t0: int, q: float,
                          dt: Optional[float]
                          ) -> Tuple[List[int], np.ndarray, int]:
  """Sampled timesteps (after t0), Fs(q, t) of A atoms over trajectories,
  and the number of frames per run. Checks the frame at t0 against start
  and, when `dt` is given, any recorded ITEM: TIME against it."""
  is_a = start.types == 0
  timesteps, all_steps, total = None, None, 0.0
  for path in paths:
    steps, every, fs, timed = [], [], [], []
    for frame, position in _follow(start, path):
      every.append(frame.timestep)
      if frame.time is not None:
        timed.append((frame.timestep, frame.time))
      if frame.timestep == t0 and structure_offset(frame, start) > 1:
        raise data.DataError(
            f"{path}: its frame at timestep {t0} (--start_timestep) is not "
            f"the initial structure {initial}; pass the runs' timestep of "
            "the initial structure as --start_timestep")
      if frame.timestep > t0:
        steps.append(frame.timestep)
        fs.append(scattering.self_scattering(
            position[is_a] - start.positions[is_a], q))
    if not steps:
      raise data.DataError(f"{path}: no frame after timestep {t0} (the "
                           "initial structure's); pass --start_timestep")
    if all_steps is None:
      timesteps, all_steps = steps, every
    elif every != all_steps:
      raise data.DataError(_how_steps_differ(path, every, paths[0],
                                             all_steps))
    if dt is not None and len(timed) >= 2 and timed[-1][0] != timed[0][0]:
      recorded = (timed[-1][1] - timed[0][1]) / (timed[-1][0] - timed[0][0])
      if not np.isclose(recorded, dt, rtol=1e-3):
        raise data.DataError(
            f"{path}: its frames record ITEM: TIME, which gives a timestep "
            f"of {recorded:.6g}, not --dt={dt:g}; pass --dt={recorded:.6g}")
    total = total + np.array(fs)
  return timesteps, total / len(paths), len(all_steps)


def _how_steps_differ(path: str, steps: Sequence[int], first: str,
                      first_steps: Sequence[int]) -> str:
  """One line telling a run of another length from one at another cadence."""
  shorter, longer = sorted((list(steps), list(first_steps)), key=len)
  if longer[:len(shorter)] == shorter:
    return (f"{path}: {len(steps)} frames ending at timestep {steps[-1]}, "
            f"{first} has {len(first_steps)} ending at {first_steps[-1]}: "
            "runs of different lengths (every run must have the same "
            "frames)")
  k = next(i for i, (a, b) in enumerate(zip(steps, first_steps)) if a != b)
  return (f"{path}: frame {k} is at timestep {steps[k]}, {first}'s at "
          f"{first_steps[k]}: runs dumped at different cadences or clocks "
          "(every run must have the same frames)")


# ------------------------------------------------------------ time points
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


def _indices_at_times(time: Sequence[float], fs: np.ndarray,
                      target_times: Sequence[float], paths: Sequence[str]
                      ) -> Tuple[List[int], List[float]]:
  """First sampled frame at or after each of `target_times`, and Fs there."""
  time = np.asarray(time)
  indices = []
  for wanted in target_times:
    if not wanted > 0:
      raise data.DataError(f"times must be above 0, got {wanted:g}")
    at = np.nonzero(time[1:] >= wanted * (1 - 1e-9))[0]
    if not len(at):
      raise data.DataError(
          f"{paths[0]} (+{len(paths) - 1} more): the runs end at t = "
          f"{time[-1]:.6g}, before the time asked for, {wanted:g}")
    indices.append(int(at[0]) + 1)
  return indices, [float(fs[i - 1]) for i in indices]


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


# ------------------------------------------------------------------ noise
def split_half_correlation(system: Dict[str, object]) -> np.ndarray:
  """Per time index, Pearson r over the A atoms of the propensity from the
  even-numbered runs with that from the odd-numbered ones (nan with fewer
  than 2 runs): how reproducible the target is. The mean over all runs is
  less noisy: Spearman-Brown puts its reliability at 2r / (1 + r)."""
  start = np.asarray(system["positions"], np.float64)
  is_a = np.asarray(system["types"]) == 0
  values = []
  for runs in system["trajectory_target_positions"]:
    if len(runs) < 2:
      values.append(float("nan"))
      continue
    even = data.propensity(start, runs[0::2])[is_a]
    odd = data.propensity(start, runs[1::2])[is_a]
    values.append(float(np.corrcoef(even, odd)[0, 1]))
  return np.array(values)


def _warn_if_few_runs(initial: str, runs: int, split_half: np.ndarray,
                      is_values: Sequence[float]) -> None:
  if runs >= MIN_RUNS:
    return
  if runs < 2:
    logging.warning(
        "%s: 1 run: the target is one trajectory's displacement, not a "
        "propensity, and its noise cannot be measured; DeepMind used 30 "
        "runs per structure", initial)
    return
  low, high = np.nanmin(split_half), np.nanmax(split_half)
  reliability = 2 * low / (1 + low) if low > -1 else float("nan")
  logging.warning(
      "%s: only %d runs, so the propensity is noisy: split-half r = %.2f .. "
      "%.2f (the A atoms' propensity from half the runs against the other "
      "half's, over the %d time points), so the %d-run target correlates "
      "~%.2f at worst with the exact propensity; DeepMind used 30 runs per "
      "structure", initial, runs, low, high, len(is_values), runs,
      np.sqrt(max(reliability, 0.0)))
