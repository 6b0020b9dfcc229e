"""Physical baselines fit on a dataset's training split and scored on its
test split: `glassy-baselines`.

  python -m glassy_jax.programs.baselines --data=DIR [--time_indices=0,9]
      [--baselines=epot,density,radial_ridge,coarse_ridge,...]
      [--output=PREFIX] [--max_files=N]

The baselines are `glassy_jax.scoring.baselines`'s. The Markdown table is printed;
`--output=PREFIX` also writes `PREFIX.md` and `PREFIX.csv`.
"""

import os

from absl import flags

from glassy_jax.programs import cli
from glassy_jax.scoring import baselines
from glassy_jax.scoring import tables


def _define_flags() -> None:
  flags.DEFINE_string("data", None, "Dataset directory: fit on DIR/train, "
                      "score on DIR/test; `demo` is the bundled demo dataset.",
                      required=True)
  flags.DEFINE_list(
      "baselines", list(baselines.DEFAULT_BASELINES),
      f"Comma-separated baselines out of {', '.join(baselines.BASELINES)}. "
      "The default ones take under a minute on the demo data. The "
      "coarse_ridge ones coarse-grain every file (coarse_ridge_inherent and "
      "coarse_ridge_relaxation first minimise it to its inherent "
      "structure): minutes on the demo data the first time, cached for "
      "later runs.")
  flags.DEFINE_list("time_indices", None,
                    "Comma-separated time indices (default: all).")
  flags.DEFINE_string("output", None, "Write PREFIX.md and PREFIX.csv.")
  flags.DEFINE_integer("max_files", 0,
                       "At most this many files per split (0 = all).",
                       lower_bound=0)


def main(args: flags.FlagValues) -> None:
  directory = cli.dataset_directory(args.data)
  rows = baselines.evaluate_baselines(
      directory, args.baselines, cli.parse_indices(args.time_indices),
      max_files=args.max_files or None, progress=True)
  title = (f"Baselines fit on {os.path.join(directory, 'train')}, scored on "
           f"{os.path.join(directory, 'test')} ({rows[0]['num_files']} "
           "files)")
  tables.report(rows, title, args.output)


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
