r"""Kob-Andersen training data in DeepMind's format, made with LAMMPS.

`generate(cfg, OUTPUT)` with a config of `configs/simulate_ka.py` (the
program is `glassy_jax.programs.simulate`). Stages (each resumable; LAMMPS
inputs and logs go to the work folder):
  1. Random start, melt, quench to T, NVT (Nose-Hoover). tau_alpha is MEASURED
     (time where Fs_A(q*, t) = 1/e on an NVT run) and re-measured until the
     NVT time at T is at least `equilibration_taus` x tau_alpha.
     The state goes to WORK/equilibrated.data, numbers to WORK/equilibrium.json.
  2. Configurations separated by `separation_taus` x tau_alpha of NVT,
     each kept as WORK/configs/config_NNN.data.
  3. Per configuration, `num_trajectories` NVE runs from fresh Maxwell-Boltzmann
     velocities, unwrapped positions recorded at log-spaced times; the
     ensemble-averaged Fs_A gives `time_indices`; the system is written
     atomically to OUTPUT/{train,test}/aggregated-NNN.pickle (existing files
     are skipped). Test configurations are interleaved with training ones.

`quench` (stage 1 without equilibration) and `nve_ensemble` (stage 3's runs
from any state) serve checks such as tests/simulation/test_physics_check.py.

Stage 3 runs trajectories in `workers` single-threaded processes rather
than OpenMP threads: processes degrade gracefully when other jobs share the
cores, threads in short `run` chunks do not (BUILD_NOTES.md, physics check).
"""

import json
import math
import multiprocessing
import os
import sys
from typing import (Any, Dict, Iterator, List, NamedTuple, Sequence,
                    Tuple)

import numpy as np

from glassy_jax import progress as progress_lib
from glassy_jax.formats import atomic
from glassy_jax.formats import data
from glassy_jax.physics import kob_andersen
from glassy_jax.simulation import lammps_runtime
from glassy_jax.simulation import scattering

FLUID = "Kob Andersen"


class Lammps:
  """A LAMMPS instance that also writes every command to an input file.

  The input file is a transcript, flushed command by command beside LAMMPS's
  own log so that a crashed run shows its last command: not atomic on purpose.
  """

  def __init__(self, stem: str, threads: int = 1):
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    self.lmp = lammps_runtime.new_lammps(log_file=stem + ".log")
    self._changed = True
    self._input = open(stem + ".in", "w")
    self.commands(lammps_runtime.thread_commands(self.lmp, threads))

  def command(self, line: str) -> None:
    self._input.write(line + "\n")
    self._input.flush()
    self.lmp.command(line)
    # `run ... pre no` is only valid if nothing changed since the last run.
    self._changed = not line.startswith("run ")

  def commands(self, lines) -> None:
    for line in lines:
      self.command(line)

  def close(self) -> None:
    self._input.close()
    self.lmp.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def box(self) -> np.ndarray:
    lo, hi = self.lmp.extract_box()[:2]
    return np.asarray(hi, np.float64) - np.asarray(lo, np.float64)

  def unwrapped_positions(self) -> np.ndarray:
    """[N, 3] x + image * L in atom-id order."""
    x = np.ctypeslib.as_array(self.lmp.gather_atoms("x", 1, 3))
    image = np.ctypeslib.as_array(self.lmp.gather_atoms("image", 0, 3))
    return (x.reshape(-1, 3) + image.reshape(-1, 3) * self.box()).copy()

  def velocities(self) -> np.ndarray:
    return np.ctypeslib.as_array(
        self.lmp.gather_atoms("v", 1, 3)).reshape(-1, 3).copy()

  def types(self) -> np.ndarray:
    """Dataset types (0 = A, 1 = B) in atom-id order."""
    return np.ctypeslib.as_array(
        self.lmp.gather_atoms("type", 0, 1)).astype(np.int32) - 1

  def advance(self, steps: int) -> None:
    if steps > 0:
      pre = "yes" if self._changed else "no"
      self.command(f"run {int(steps)} pre {pre} post no")


def _setup_commands(dt: float) -> List[str]:
  return ["units lj", "atom_style atomic", "atom_modify map array",
          "boundary p p p", f"timestep {dt}", "thermo 0"]


def _read_state(lmp: Lammps, path: str, dt: float) -> None:
  lmp.commands(_setup_commands(dt)[:-2])
  lmp.command(f"read_data {path}")
  lmp.commands(kob_andersen.lammps_potential_commands())
  lmp.commands(_setup_commands(dt)[-2:])


def _seed(cfg, *keys) -> int:
  """A LAMMPS seed (1 .. 2^30) that depends only on cfg.seed and `keys`."""
  rng = np.random.default_rng([int(cfg.seed), *keys])
  return int(rng.integers(1, 2 ** 30))


class Relaxation(NamedTuple):
  """What one Fs_A(q, t) run measured."""
  tau_alpha: float  # Time where Fs_A first reaches 1/e (interpolated).
  time_below_min: float  # First sampled time with Fs_A < min(IS_VALUES).
  pressure: float  # Mean thermo pressure over the (log-spaced) samples.


def measure_relaxation(lmp: Lammps, cfg, q: float,
                       max_time: float) -> Relaxation:
  """Runs on (with whatever fix is active) until Fs_A(q, t) < min IS value."""
  types = lmp.types()
  start = lmp.unwrapped_positions()[types == 0]
  floor = min(scattering.IS_VALUES)
  times, fs, pressures = [0.0], [1.0], []
  previous = 0
  for step in scattering.log_spaced_steps(int(max_time / cfg.dt),
                                          cfg.sample_ratio)[1:]:
    lmp.advance(step - previous)
    previous = step
    times.append(step * cfg.dt)
    fs.append(scattering.self_scattering(
        lmp.unwrapped_positions()[types == 0] - start, q))
    pressures.append(lmp.lmp.get_thermo("press"))
    if fs[-1] < floor:
      break
  else:
    raise RuntimeError(f"Fs_A still {fs[-1]:.3f} after t = {max_time}: "
                       "raise max_measure_time")
  i = int(np.nonzero(np.asarray(fs) < np.exp(-1))[0][0])
  # Interpolate log(Fs) linearly in log(t) between the bracketing samples.
  f0, f1 = math.log(fs[i - 1]), math.log(fs[i])
  t0, t1 = math.log(max(times[i - 1], cfg.dt)), math.log(times[i])
  tau = math.exp(t0 + (-1.0 - f0) * (t1 - t0) / (f1 - f0))
  return Relaxation(tau, times[-1], float(np.mean(pressures)))


def _status(message: str) -> None:
  print(f"[simulate] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- stage 1
def _melt_and_quench(lmp: Lammps, cfg, progress=lambda: None) -> None:
  """Random start, melt, linear quench; leaves NVT at cfg.temperature on."""
  mixture = kob_andersen.Mixture(cfg.num_particles, cfg.fraction_a,
                                 cfg.density)
  length = mixture.box_length
  temperature = cfg.temperature
  damping = cfg.thermostat_damping
  lmp.commands(_setup_commands(cfg.dt)[:-2])
  lmp.commands([
      f"region box block 0 {length!r} 0 {length!r} 0 {length!r}",
      "create_box 2 box",
      f"create_atoms 1 random {mixture.num_a} {_seed(cfg, 0, 1)} NULL",
      f"create_atoms 2 random {mixture.num_b} {_seed(cfg, 0, 2)} NULL"])
  lmp.commands(kob_andersen.lammps_potential_commands())
  lmp.commands(_setup_commands(cfg.dt)[-2:])
  # Random insertion overlaps; the minimiser removes the huge forces.
  lmp.command("minimize 1e-4 1e-6 1000 10000")
  lmp.command("reset_timestep 0")
  progress()
  melt = cfg.melt_temperature
  lmp.commands([
      f"velocity all create {melt} {_seed(cfg, 0, 3)} dist gaussian mom yes",
      f"fix thermostat all nvt temp {melt} {melt} {damping}"])
  lmp.advance(round(cfg.melt_time / cfg.dt))
  progress()
  lmp.commands([
      "unfix thermostat",
      f"fix thermostat all nvt temp {melt} {temperature} {damping}"])
  lmp.advance(round(cfg.quench_time / cfg.dt))
  lmp.commands([
      "unfix thermostat",
      f"fix thermostat all nvt temp {temperature} {temperature} {damping}"])
  progress()


def quench(cfg, work: str, anneal_time: float = 0.0) -> str:
  """Stage 1 without equilibration: melt, quench, `anneal_time` of NVT at T.

  For checks at temperatures where equilibrating for many tau_alpha is out of
  reach. Returns the path of the state written (WORK/quenched.data).
  """
  path = os.path.join(work, "quenched.data")
  with Lammps(os.path.join(work, "quench"), cfg.threads) as lmp:
    _melt_and_quench(lmp, cfg)
    lmp.advance(round(anneal_time / cfg.dt))
    lmp.command(f"write_data {path} nocoeff")
  return path


def equilibrate(cfg, work: str) -> Dict[str, Any]:
  """Stage 1; returns (and stores) tau_alpha, q, pressure, run length."""
  summary_path = os.path.join(work, "equilibrium.json")
  state_path = os.path.join(work, "equilibrated.data")
  if os.path.exists(summary_path) and os.path.exists(state_path):
    with open(summary_path) as f:
      return json.load(f)
  temperature = cfg.temperature
  bar = progress_lib.bar(desc="stage 1 equilibration", unit="phase")
  with Lammps(os.path.join(work, "equilibrate"), cfg.threads) as lmp:
    _melt_and_quench(lmp, cfg, bar.update)
    q = cfg.q
    if q is None:
      types = lmp.types()
      qs, s_aa = scattering.structure_factor(
          lmp.unwrapped_positions()[types == 0], lmp.box())
      q = scattering.first_peak(qs, s_aa)
    # NVT at T until the time spent there (measurement runs included) is
    # `equilibration_taus` x the latest tau_alpha, re-measured after each
    # stretch: the first estimate, right after the quench, is too short.
    history = [measure_relaxation(lmp, cfg, q, cfg.max_measure_time)]
    elapsed = history[-1].time_below_min
    bar.update()
    while (len(history) < 2
           or elapsed < cfg.equilibration_taus * history[-1].tau_alpha):
      _status(f"tau_alpha estimate {history[-1].tau_alpha:.4g}, "
              f"equilibrated for {elapsed:.4g}")
      steps = max(0, round(
          (cfg.equilibration_taus * history[-1].tau_alpha - elapsed) / cfg.dt))
      lmp.advance(steps)
      history.append(measure_relaxation(lmp, cfg, q, cfg.max_measure_time))
      elapsed += steps * cfg.dt + history[-1].time_below_min
      bar.update()
    final = history[-1]
    lmp.command(f"write_data {state_path} nocoeff")
  bar.close()
  summary = {"tau_alpha": final.tau_alpha,
             "tau_alpha_history": [r.tau_alpha for r in history],
             "equilibration_time": elapsed,
             "time_below_min_is": final.time_below_min,
             "q": q, "pressure": final.pressure,
             "temperature": temperature}
  _status(f"tau_alpha {final.tau_alpha:.4g} at T = {temperature}, q = {q:.3f},"
          f" P = {final.pressure:.4g}")
  with atomic.atomic_write(summary_path, "w") as f:
    json.dump(summary, f, indent=1)
  return summary


# ---------------------------------------------------------------- stage 2
def _config_path(work: str, index: int) -> str:
  return os.path.join(work, "configs", f"config_{index:03d}.data")


def make_configurations(cfg, work: str, summary: Dict[str, Any]) -> None:
  """Stage 2: continues the NVT chain from the last configuration on disk."""
  total = cfg.num_train + cfg.num_test
  done = 0
  while done < total and os.path.exists(_config_path(work, done)):
    done += 1
  if done == total:
    return
  start = (_config_path(work, done - 1) if done
           else os.path.join(work, "equilibrated.data"))
  separation = round(cfg.separation_taus * summary["tau_alpha"] / cfg.dt)
  t = cfg.temperature
  with Lammps(os.path.join(work, "configs", f"chain_from_{done:03d}"),
              cfg.threads) as lmp:
    _read_state(lmp, start, cfg.dt)
    lmp.command(f"fix thermostat all nvt temp {t} {t} "
                f"{cfg.thermostat_damping}")
    for index in progress_lib.bar(range(done, total),
                                  desc="stage 2 configurations",
                                  unit="config"):
      lmp.advance(separation)
      path = _config_path(work, index)
      lmp.command(f"write_data {path}.tmp nocoeff")
      os.replace(path + ".tmp", path)


# ---------------------------------------------------------------- stage 3
def split_of(index: int, num_train: int, num_test: int) -> Tuple[str, int]:
  """(split, number in split): test configurations spread evenly."""
  total = num_train + num_test
  tests_before = index * num_test // total
  if (index + 1) * num_test // total > tests_before:
    return "test", tests_before
  return "train", index - tests_before


def run_trajectory(job: Dict) -> Dict[str, np.ndarray]:
  """One NVE run from `job['data']` with fresh velocities (worker process)."""
  cfg = job["cfg"]
  with Lammps(job["stem"]) as lmp:
    _read_state(lmp, job["data"], cfg["dt"])
    lmp.commands([
        "set group all image 0 0 0",  # Start unwrapped = stored positions.
        f"velocity all create {cfg['temperature']} {job['seed']} "
        "dist gaussian mom yes",
        "fix integrator all nve"])
    start = lmp.unwrapped_positions()
    types = lmp.types()
    velocities = lmp.velocities()
    steps = job["steps"]
    displacements = np.zeros((len(steps), len(start), 3), np.float64)
    for k in range(1, len(steps)):
      lmp.advance(steps[k] - steps[k - 1])
      displacements[k] = lmp.unwrapped_positions() - start
  fs = scattering.self_scattering(displacements[:, types == 0], job["q"])
  return {"start": start, "types": types, "velocities": velocities,
          "displacements": displacements, "fs": fs}


def worker_pool(workers: int):
  """Processes for `nve_ensemble`; spawned, since MPI dislikes fork."""
  return multiprocessing.get_context("spawn").Pool(max(1, workers))


def nve_ensemble(pool, state: str, folder: str, temperature: float, dt: float,
                 steps: Sequence[int], seeds: Sequence[int],
                 q: float) -> Iterator[Dict[str, np.ndarray]]:
  """Yields `run_trajectory`'s result per seed, in order: one NVE run each.

  All start from the LAMMPS data file `state` with Maxwell-Boltzmann
  velocities at `temperature` drawn from their seed; `steps` (from 0) are
  where displacements are recorded. Inputs and logs go to FOLDER/traj_KK.
  """
  jobs = [{"cfg": {"dt": dt, "temperature": temperature}, "data": state,
           "stem": os.path.join(folder, f"traj_{k:02d}"), "seed": seed,
           "steps": list(steps), "q": q} for k, seed in enumerate(seeds)]
  return pool.imap(run_trajectory, jobs)


def _system(cfg, summary, runs, box,
            times) -> Tuple[Dict[str, Any], np.ndarray]:
  """DeepMind's dict for one configuration's ensemble, and its mean Fs_A."""
  fs = np.mean([r["fs"] for r in runs], axis=0)
  indices = scattering.time_indices(fs)
  start = runs[0]["start"]
  system = {
      "positions": start,
      "types": runs[0]["types"],
      "box": box,
      "time": times,
      "time_indices": indices,
      "is_values": np.asarray(scattering.IS_VALUES),
      "metadata": {"temperature": float(cfg.temperature),
                   "pressure": float(summary["pressure"]),
                   "fluid": FLUID},
  }
  targets = [[start + r["displacements"][i] for r in runs] for i in indices]
  if cfg.store == "targets":
    system["targets"] = [data.propensity(start, t) for t in targets]
  else:
    system["trajectory_start_velocities"] = [r["velocities"] for r in runs]
    system["trajectory_target_positions"] = targets
  return system, fs


def run_ensembles(cfg, output: str, work: str,
                  summary: Dict[str, Any]) -> None:
  """Stage 3: one isoconfigurational ensemble per missing output file."""
  total = cfg.num_train + cfg.num_test
  pending = []
  for index in range(total):
    split, number = split_of(index, cfg.num_train, cfg.num_test)
    path = os.path.join(output, split, f"aggregated-{number:03d}.pickle")
    if not os.path.exists(path):
      pending.append((index, path))
  if not pending:
    return
  max_step = math.ceil(cfg.run_margin * summary["time_below_min_is"] / cfg.dt)
  steps = scattering.log_spaced_steps(max_step, cfg.sample_ratio)
  times = [round(float(s) * cfg.dt, 10) for s in steps]
  bar = progress_lib.bar(total=len(pending) * cfg.num_trajectories,
                         desc="stage 3 trajectories", unit="traj")
  with worker_pool(cfg.workers) as pool:
    for index, path in pending:
      ensemble_dir = os.path.join(work, "ensembles", f"config_{index:03d}")
      seeds = [_seed(cfg, 1, index, k) for k in range(cfg.num_trajectories)]
      runs = []
      for run in nve_ensemble(pool, _config_path(work, index), ensemble_dir,
                              cfg.temperature, cfg.dt, steps, seeds,
                              summary["q"]):
        runs.append(run)
        bar.update()
      with Lammps(os.path.join(ensemble_dir, "box")) as lmp:
        _read_state(lmp, _config_path(work, index), cfg.dt)
        box = lmp.box()
      system, fs = _system(cfg, summary, runs, box, times)
      with atomic.atomic_write(os.path.join(ensemble_dir, "fs.npz")) as f:
        np.savez(f, time=times, fs=fs, time_indices=system["time_indices"])
      data.write_system(path, system)
  bar.close()


def generate(cfg, output: str) -> None:
  """Runs (or resumes) all stages."""
  if cfg.store not in ("targets", "trajectories"):
    raise ValueError(f"store must be 'targets' or 'trajectories', "
                     f"not {cfg.store!r}")
  work = cfg.work_dir or os.path.join(output, "work")
  os.makedirs(work, exist_ok=True)
  summary = equilibrate(cfg, work)
  make_configurations(cfg, work, summary)
  run_ensembles(cfg, output, work, summary)
