r"""Scores a checkpoint against every time index of dataset splits:
`glassy-evaluate`.

  python -m glassy_jax.programs.evaluate \
      --checkpoint=runs/bapst/checkpoints/best.npz \
      --data=DIR[,DIR2,...] [--split=test] [--time_indices=0,9] \
      [--baselines=epot,density,radial_ridge] [--output=PREFIX]

One row per time index and data directory (`glassy_jax.inference.evaluate`);
`--baselines` adds the rows of physical baselines (`glassy_jax.scoring.baselines`,
fitted on each directory's `train/` split). The Markdown table is printed;
`--output=PREFIX` also writes `PREFIX.md` and `PREFIX.csv`.
"""


from absl import flags

from glassy_jax.inference import evaluate
from glassy_jax.programs import cli
from glassy_jax.scoring import baselines
from glassy_jax.scoring import tables


def _define_flags() -> None:
  cli.define_checkpoint_flag()
  flags.DEFINE_list("data", None, "Dataset directories (DIR/split/"
                    "aggregated*), comma-separated: rows for each; `demo` "
                    "is the bundled demo dataset.")
  flags.DEFINE_string("split", "test", "Subdirectory of --data to score.")
  flags.DEFINE_list("time_indices", None,
                    "Comma-separated time indices (default: all).")
  flags.DEFINE_list("baselines", [], "Baselines to add to the table "
                    f"(glassy_jax.scoring.baselines: {', '.join(baselines.BASELINES)}"
                    "), fitted on each directory's train split.")
  flags.DEFINE_string("output", None, "Write PREFIX.md and PREFIX.csv.")
  flags.DEFINE_integer("max_files", 0, "At most this many files (0 = all).",
                       lower_bound=0)
  flags.mark_flags_as_required(["checkpoint", "data"])


def main(args: flags.FlagValues) -> None:
  directories = [cli.dataset_directory(d) for d in args.data]
  time_indices = cli.parse_indices(args.time_indices)
  max_files = args.max_files or None
  rows = []
  for directory in directories:
    scored = evaluate.evaluate_checkpoint(args.checkpoint, directory,
                                          args.split, time_indices, max_files)
    rows += scored
    if args.baselines:
      rows += baselines.evaluate_baselines(
          directory, args.baselines, [r["time_index"] for r in scored],
          split=args.split, max_files=max_files)
  title = (f"{args.checkpoint} on the {args.split} split of "
           f"{', '.join(args.data)}")
  tables.report(rows, title, args.output)


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
