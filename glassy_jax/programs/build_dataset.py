r"""A dataset directory from your LAMMPS configurations: `glassy-build-dataset`.

  python -m glassy_jax.programs.build_dataset \
      --configurations='my_glass/config_*' --output=my_glass/dataset \
      --temperature=0.44

Each configuration is a folder with its structure (start.data) and its
isoconfigurational runs (run_*.dump), as examples/lammps/ writes them. The
output is DeepMind's layout, OUTPUT/train/aggregated-NNN.pickle and
OUTPUT/test/..., for `--config.data.directory=OUTPUT`, with summary.md (the
runs, frames and chosen times of each configuration) and fs.png (Fs(q, t)
with the chosen times). Run it again after an interruption: what was built
is kept (`glassy_jax.simulation.build_dataset`).
"""

from absl import flags

from glassy_jax.programs import cli
from glassy_jax.simulation import build_dataset


def _define_flags() -> None:
  flags.DEFINE_list("configurations", None,
                    "Configuration folders: globs, comma-separated. A folder "
                    "holds one structure and its runs, or such folders.")
  flags.DEFINE_string("output", None, "Dataset directory to write (train/, "
                      "test/, summary.md, fs.png, build.json).")
  flags.DEFINE_string("initial", "start.data", "The structure's file name "
                      "inside each configuration folder (data file or dump).")
  flags.DEFINE_string("runs", "run_*.dump", "Glob of the runs' dumps inside "
                      "each configuration folder (one dump per run).")
  flags.DEFINE_float("test_fraction", 0.2, "Fraction of the configurations "
                     "that go to test/ (at least one each way).")
  flags.DEFINE_integer("seed", 0, "Seed of the train/test shuffle.")
  flags.DEFINE_list("times", None, "Time points as times (LJ units, e.g. "
                    "0.5,2,10): the first frame at or after each. Default: "
                    "where Fs(q, t) first drops below 0.9, ..., 0.1 and 1/e.")
  cli.define_physics_flags()
  flags.mark_flags_as_required(["configurations", "output"])


def _times(text):
  if not text:
    return None
  try:
    return [float(t) for t in text]
  except ValueError:
    raise cli.UsageError(f"--times must be numbers, got {','.join(text)}"
                         ) from None


def main(args: flags.FlagValues) -> None:
  rows = build_dataset.build_dataset(
      args.configurations, args.output, initial_name=args.initial,
      runs_pattern=args.runs, test_fraction=args.test_fraction,
      seed=args.seed, target_times=_times(args.times), progress=True,
      **cli.physics_kwargs(args))
  train = sum(r["split"] == "train" for r in rows)
  print(f"wrote {args.output}: {train} train and {len(rows) - train} test "
        "systems")
  for r in rows:
    times = [p["time"] for p in r["points"]]
    print(f"  {r['name']} -> {r['file']}: {r['atoms']} atoms, {r['runs']} "
          f"runs x {r['frames']} frames, t = {min(times):.4g} ... "
          f"{max(times):.4g}")
  print(f"check {build_dataset.SUMMARY} and {build_dataset.FIGURE} in "
        f"{args.output}")


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
