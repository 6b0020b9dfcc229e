r"""Kob-Andersen training data in DeepMind's format, made with LAMMPS:
`glassy-simulate`.

  python -m glassy_jax.programs.simulate \
      --config=configs/simulate_ka.py:tiny --output=DIR \
      [--config.temperature=0.5 ...]

The stages, and how an interrupted run resumes, are described in
`glassy_jax.simulation.simulate`.
"""

import signal
import sys

from absl import flags

from glassy_jax.programs import cli
from glassy_jax.simulation import simulate


def _define_flags() -> None:
  cli.define_config_flag("simulate_ka", "Generation config.")
  flags.DEFINE_string("output", None, "Dataset folder.")
  flags.mark_flag_as_required("output")


def main(args: flags.FlagValues) -> None:
  # On `kill`, unwind normally so the worker pool is terminated, not orphaned.
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
  simulate.generate(args.config, args.output)


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
