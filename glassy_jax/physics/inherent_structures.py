"""Inherent structures: each configuration quenched to its nearest energy minimum.

At low temperature the vibrations of a glass blur the structure that sets its
slow dynamics; the local minimum of the potential energy reached from a
configuration by steepest-descent-like motion (its *inherent structure*,
Stillinger and Weber) removes them. Structural descriptors computed on it
predict propensity at the structural relaxation time far better than the same
descriptors on the thermal configuration (BUILD_NOTES.md, "Slow dynamics").

The minimiser is FIRE (Bitzek et al., PRL 97, 170201 (2006)) on the
Kob-Andersen potential of `simulation.kob_andersen` (pair energies shifted to
zero at the cutoff), in float64 JAX, with a Verlet pair list rebuilt whenever
a particle has moved half the skin since it was built. It stops when no
particle feels a force above `force_tolerance`.

Minimisation is too costly to repeat on every read (timings per
configuration: BUILD_NOTES.md, "Slow dynamics"), so each result is cached by
content (positions, types, box and the minimiser's parameters) in a
cache directory, written atomically; data directories may be read-only.
"""

import dataclasses
import hashlib
import os
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from glassy_jax.formats import atomic
from glassy_jax.formats import data as data_lib
from glassy_jax.formats import storage
from glassy_jax.physics import graphs
from glassy_jax.physics import kob_andersen

CACHE_ENV = "GLASSY_JAX_CACHE"
# Pair lists are padded to a multiple of this, so a rebuilt list rarely
# changes the compiled shape.
_PAIR_MULTIPLE = 16384


@dataclasses.dataclass(frozen=True)
class Fire:
  """FIRE's parameters (Bitzek et al. 2006's, with LAMMPS's step cap)."""
  force_tolerance: float = 1e-6  # Max |F_i| at the minimum (LJ units).
  max_steps: int = 100_000
  dt_start: float = 0.005
  dt_max: float = 0.05
  dt_min: float = 0.0005  # Uphill steps shrink dt no further.
  max_move: float = 0.1  # No particle moves more per step (LAMMPS's dmax).
  n_delay: int = 5
  f_inc: float = 1.1
  f_dec: float = 0.5
  alpha_start: float = 0.1
  f_alpha: float = 0.99
  skin: float = 0.4  # Pair list reach beyond the potential's cutoff.
  chunk_steps: int = 500  # Steps per compiled loop between host checks.


class Minimum(NamedTuple):
  """A minimised configuration."""
  positions: np.ndarray  # [N, 3] float64, unwrapped like the input.
  energy: float  # Total potential energy (shifted pairs).
  max_force: float  # Largest |F_i| left.
  steps: int  # FIRE steps taken.


class _State(NamedTuple):
  positions: jax.Array
  velocities: jax.Array
  forces: jax.Array
  dt: jax.Array
  alpha: jax.Array
  positive_steps: jax.Array  # Consecutive steps with F.v > 0.
  steps: jax.Array


def _pair_list(positions, types, box, reach):
  """Pairs i < j within `reach`, padded with (0, 0) pairs masked out."""
  senders, receivers = graphs.neighbour_pairs(positions, box, reach)
  keep = senders < receivers
  i, j = senders[keep], receivers[keep]
  size = _PAIR_MULTIPLE * -(-(len(i) + 1) // _PAIR_MULTIPLE)
  pad = size - len(i)
  mask = np.concatenate([np.ones(len(i), bool), np.zeros(pad, bool)])
  i = np.concatenate([i, np.zeros(pad, i.dtype)])
  j = np.concatenate([j, np.zeros(pad, j.dtype)])
  ti, tj = types[i], types[j]
  return (jnp.asarray(i), jnp.asarray(j), jnp.asarray(mask),
          jnp.asarray(kob_andersen.EPSILON[ti, tj]),
          jnp.asarray(kob_andersen.SIGMA[ti, tj] ** 2))


def _energy(positions, box, pairs):
  """Total shifted Lennard-Jones energy of the listed pairs."""
  i, j, mask, epsilon, sigma2 = pairs
  d = positions[j] - positions[i]
  d = d - box * jnp.round(d / box)
  r2 = jnp.sum(d * d, axis=-1)
  cut2 = kob_andersen.CUTOFF_IN_SIGMA ** 2 * sigma2
  inside = mask & (r2 < cut2)
  s6 = (sigma2 / jnp.where(inside, r2, cut2)) ** 3
  s6c = (1.0 / kob_andersen.CUTOFF_IN_SIGMA ** 2) ** 3
  pair = 4 * epsilon * ((s6 * s6 - s6) - (s6c * s6c - s6c))
  return jnp.sum(jnp.where(inside, pair, 0.0))


def _max_force(forces):
  return jnp.sqrt(jnp.max(jnp.sum(forces * forces, axis=-1)))


def _fire_steps(state: _State, reference, box, pairs, fire: Fire,
                stop_at) -> _State:
  """FIRE steps until converged, `stop_at` steps, or a particle has moved
  half the skin from `reference` (the pair list's positions)."""
  grad = jax.grad(_energy)

  def moved_too_far(positions):
    d = positions - reference
    return jnp.max(jnp.sum(d * d, axis=-1)) > (fire.skin / 2) ** 2

  def go_on(s):
    return ((_max_force(s.forces) >= fire.force_tolerance)
            & (s.steps < stop_at) & ~moved_too_far(s.positions))

  def step(s):
    power = jnp.sum(s.forces * s.velocities)
    uphill = power <= 0
    # Uphill: stop, step back half a step, shrink dt (FIRE 2.0's correction).
    positions = jnp.where(uphill, s.positions - 0.5 * s.dt * s.velocities,
                          s.positions)
    velocities = jnp.where(uphill, 0.0, s.velocities)
    positive = jnp.where(uphill, 0, s.positive_steps + 1)
    grow = positive > fire.n_delay
    dt = jnp.where(uphill, jnp.maximum(s.dt * fire.f_dec, fire.dt_min),
                   jnp.where(grow, jnp.minimum(s.dt * fire.f_inc, fire.dt_max),
                             s.dt))
    alpha = jnp.where(uphill, fire.alpha_start,
                      jnp.where(grow, s.alpha * fire.f_alpha, s.alpha))
    velocities = velocities + dt * s.forces  # Unit masses.
    v_norm = jnp.sqrt(jnp.sum(velocities * velocities))
    f_norm = jnp.sqrt(jnp.sum(s.forces * s.forces))
    velocities = ((1 - alpha) * velocities
                  + alpha * v_norm / jnp.maximum(f_norm, 1e-300) * s.forces)
    # Capped steps (overlapping particles) slow the motion itself down.
    longest = dt * jnp.sqrt(jnp.max(jnp.sum(velocities * velocities, -1)))
    velocities = velocities * jnp.minimum(
        1.0, fire.max_move / jnp.maximum(longest, 1e-300))
    positions = positions + dt * velocities
    forces = -grad(positions, box, pairs)
    return _State(positions, velocities, forces, dt, alpha, positive,
                  s.steps + 1)

  return jax.lax.while_loop(go_on, step, state)


_fire_steps_jit = jax.jit(_fire_steps, static_argnames=("fire",))


def minimise(positions: np.ndarray, types: np.ndarray, box: np.ndarray,
             fire: Fire = Fire()) -> Minimum:
  """The inherent structure reached from `positions` by FIRE."""
  types = np.asarray(types, np.int64)
  reach = kob_andersen.CUTOFF_IN_SIGMA * kob_andersen.SIGMA.max() + fire.skin
  with jax.enable_x64(True):
    box_j = jnp.asarray(box, jnp.float64)
    x = jnp.asarray(positions, jnp.float64)
    grad = jax.jit(jax.grad(_energy))
    state = None
    while True:
      pairs = _pair_list(np.asarray(x), types, np.asarray(box), reach)
      forces = -grad(x, box_j, pairs)
      if state is None:
        state = _State(x, jnp.zeros_like(x), forces,
                       jnp.float64(fire.dt_start),
                       jnp.float64(fire.alpha_start), jnp.int64(0),
                       jnp.int64(0))
      else:  # The same motion, forces from the new list.
        state = state._replace(forces=forces)
      converged = float(_max_force(state.forces)) < fire.force_tolerance
      if converged or int(state.steps) >= fire.max_steps:
        break
      stop_at = min(int(state.steps) + fire.chunk_steps, fire.max_steps)
      state = _fire_steps_jit(state, x, box_j, pairs, fire,
                              jnp.int64(stop_at))
      x = state.positions
    max_force = float(_max_force(state.forces))
    if not max_force < fire.force_tolerance:
      raise data_lib.DataError(
          f"FIRE did not reach |F| < {fire.force_tolerance:g} in "
          f"{fire.max_steps} steps (max |F| = {max_force:.3g})")
    return Minimum(np.asarray(x, np.float64),
                   float(_energy(x, box_j, pairs)), max_force,
                   int(state.steps))


# --------------------------------------------------------------------- cache
def default_cache_directory() -> str:
  """$GLASSY_JAX_CACHE, else ~/.cache/glassy_jax."""
  return os.environ.get(CACHE_ENV) or os.path.join(
      os.path.expanduser("~"), ".cache", "glassy_jax")


def cache_path(kind: str, snapshot: data_lib.Snapshot, parameters: object,
               directory: Optional[str] = None) -> str:
  """Where the `kind` result of `snapshot`'s structure computed with
  `parameters` (their repr) is cached, under `directory` (default
  `default_cache_directory()`): named by a digest of both."""
  digest = hashlib.sha256()
  for array in (np.asarray(snapshot.positions, np.float64),
                np.asarray(snapshot.types, np.int64),
                np.asarray(snapshot.box, np.float64)):
    digest.update(np.ascontiguousarray(array).tobytes())
  digest.update(repr(parameters).encode())
  return storage.join(directory or default_cache_directory(), kind,
                      digest.hexdigest()[:32] + ".npy")


def cached(path: str, shape: tuple,
           compute: Callable[[], np.ndarray]) -> np.ndarray:
  """The array cached at `path` if it has `shape`, else `compute()`, cached
  atomically (a damaged cache file is recomputed)."""
  try:
    with storage.open_file(path, "rb") as f:
      values = np.load(f, allow_pickle=False)
    if values.shape == shape:
      return values
  except (OSError, ValueError):  # Not cached yet, or a damaged cache file.
    pass
  values = compute()
  with atomic.atomic_write(path) as f:
    np.save(f, values)
  return values


def inherent_snapshot(snapshot: data_lib.Snapshot,
                      cache_directory: Optional[str] = None,
                      fire: Fire = Fire()) -> data_lib.Snapshot:
  """`snapshot` with its positions replaced by its inherent structure's:
  `snapshot.inherent_positions` when the file carried them, else minimised
  once and cached in `cache_directory` (default `default_cache_directory()`).
  Targets and name are kept."""
  if snapshot.inherent_positions is not None:
    return snapshot._replace(positions=snapshot.inherent_positions)
  path = cache_path("inherent", snapshot, dataclasses.astuple(fire),
                    cache_directory)
  positions = cached(path, snapshot.positions.shape, lambda: minimise(
      snapshot.positions, snapshot.types, snapshot.box, fire).positions)
  return snapshot._replace(positions=positions, inherent_positions=positions)
