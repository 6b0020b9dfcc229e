r"""A system in DeepMind's format from your own LAMMPS trajectory dumps:
`glassy-build-system`.

  python -m glassy_jax.programs.build_system --initial=start.dump \
      --trajectories='runs/traj_*.dump' --output=aggregated_0.pickle \
      --temperature=0.44

One dump per trajectory of an isoconfigurational ensemble, all started
from the `--initial` structure (`glassy_jax.simulation.build_system`).
"""

import glob

from absl import flags

from glassy_jax.formats import data
from glassy_jax.programs import cli
from glassy_jax.simulation import build_system


def _define_flags() -> None:
  flags.DEFINE_string("initial", None, "Dump or data file: the structure.")
  flags.DEFINE_string("trajectories", None,
                      "Glob of trajectory dumps (one per trajectory).")
  flags.DEFINE_string("output", None, "System file to write (.pickle/.npz).")
  cli.define_physics_flags()
  flags.mark_flags_as_required(["initial", "trajectories", "output"])


def main(args: flags.FlagValues) -> None:
  paths = sorted(glob.glob(args.trajectories))
  if not paths:
    raise data.DataError(f"no files match {args.trajectories}")
  system, _ = build_system.build_system_from_dumps(
      args.initial, paths, **cli.physics_kwargs(args))
  data.write_system(args.output, system)
  print(f"wrote {args.output}: {len(system['positions'])} atoms, "
        f"{len(paths)} trajectories")
  for index, value in zip(system["time_indices"], system["is_values"]):
    print(f"  IS {value:.3f}: time index {index}, t = "
          f"{system['time'][index]:.6g}")


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
