"""Kob-Andersen data generation (`python -m glassy_jax.programs.simulate`).

Presets after a colon: `configs/simulate_ka.py:tiny` (seconds-scale smoke
test), `configs/simulate_ka.py:demo` (the bundled demo dataset, T = 0.64).
Times are in LJ units; `*_taus` are multiples of the MEASURED tau_alpha.
"""

import ml_collections


def get_config(preset=None):
  """Returns the generation config; `preset` is None, 'tiny' or 'demo'."""
  c = ml_collections.ConfigDict()
  # System (docs/specification.md, "The Kob-Andersen system"): 4096
  # particles, 80:20, density 1.2.
  c.num_particles = 4096
  c.fraction_a = 0.8  # Fraction of A particles.
  c.density = 1.2  # Number density (particles per sigma_AA^3).
  c.temperature = 0.44  # Temperature T (LJ units).
  # DeepMind's `time` list is in multiples of 0.003: their timestep.
  c.dt = 0.003
  c.thermostat_damping = 0.5  # Nose-Hoover Tdamp (LJ time).
  # Stage 1: melt, quench, then NVT equilibration.
  c.melt_temperature = 2.0
  c.melt_time = 10.0  # NVT time of the melt (LJ time).
  c.quench_time = 10.0  # Linear NVT ramp melt_temperature -> temperature.
  c.equilibration_taus = 10.0  # NVT time at T, in measured tau_alpha.
  c.max_measure_time = 2e5  # Give up measuring tau_alpha past this time.
  c.q = ml_collections.FieldReference(None, field_type=float)  # None: S_AA peak.
  # Stage 2: configurations separated by this many tau_alpha (NVT).
  c.separation_taus = 2.0
  c.num_train = 320  # Configurations in train/.
  c.num_test = 80  # Configurations in test/.
  # Stage 3: isoconfigurational NVE ensembles.
  c.num_trajectories = 30
  # Runs last run_margin x the measured time where Fs_A drops below 0.1.
  c.run_margin = 1.5
  c.sample_ratio = 1.1  # Log spacing of the recorded times.
  c.store = "targets"  # 'targets' (small) or 'trajectories' (DeepMind's full).
  c.workers = 2  # Parallel single-threaded LAMMPS processes for stage 3.
  c.threads = 1  # OpenMP threads per LAMMPS instance (see lammps_runtime).
  c.seed = 42  # Seed of velocities and placements.
  c.work_dir = ""  # Empty: OUTPUT/work.

  if preset == "tiny":
    c.num_particles = 256
    c.temperature = 0.8
    c.dt = 0.005
    c.melt_time = 5.0
    c.quench_time = 5.0
    c.equilibration_taus = 5.0
    c.run_margin = 2.0  # 205 A particles: Fs is noisy near 0.1.
    c.q = 7.25  # A 6-sigma box resolves S(q) too coarsely to locate the peak.
    c.separation_taus = 1.0
    c.num_train = 2
    c.num_test = 1
    c.num_trajectories = 4
    c.store = "trajectories"
  elif preset == "demo":
    c.temperature = 0.64
    c.dt = 0.005
    c.equilibration_taus = 10.0
    c.separation_taus = 1.0
    c.num_train = 16
    c.num_test = 4
    # Cost of these 16 runs x 20 configurations: BUILD_NOTES.md, "Bundled
    # demo dataset".
    c.num_trajectories = 16
    c.store = "targets"
  elif preset is not None:
    raise ValueError(f"unknown preset {preset!r} (tiny, demo)")
  return c
