"""A dataset in DeepMind's layout rewritten as `.npz` systems (no pickle):
`glassy-convert-data`.

  python -m glassy_jax.programs.convert_data --input=DIR --output=NPZ_DIR

Every `DIR/{train,test}/aggregated*` system becomes
`NPZ_DIR/{train,test}/aggregated*.npz` (`data.convert_to_npz`).
"""

from absl import flags

from glassy_jax.formats import data
from glassy_jax.programs import cli


def _define_flags() -> None:
  flags.DEFINE_string("input", None, "Dataset folder (DeepMind's layout: "
                      "train/, test/).", required=True)
  flags.DEFINE_string("output", None, "Folder for the .npz form.",
                      required=True)


def main(args: flags.FlagValues) -> None:
  files = data.convert_to_npz(args.input, args.output, progress=True)
  print(f"wrote {len(files)} .npz systems under {args.output}")


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
