r"""Figures (PNG): learning curves, correlation vs time, predictions vs truth:
`glassy-plot`.

  python -m glassy_jax.programs.plot curves --workdir=runs/bapst \
      [--output=PNG]
  python -m glassy_jax.programs.plot correlation_vs_time \
      --tables=t0.csv,t9.csv [--labels='trained at t0,trained at t9'] \
      --output=correlation.png
  python -m glassy_jax.programs.plot scatter --checkpoint=CKPT --input=FILE \
      [--time_index=K] --output=scatter.png
  python -m glassy_jax.programs.plot snapshot --checkpoint=CKPT --input=FILE \
      [--time_index=K] --output=slab.png

`--tables` are CSVs written by `glassy_jax.programs.evaluate --output` (or
`.baselines`); rows of the physical baselines are drawn dashed. `--input`
is a DeepMind system (pickle or `.npz`); `--time_index` defaults to the
checkpoint's. The figures are `glassy_jax.inference.plotting`'s.
"""

import os

from absl import flags
from matplotlib.figure import Figure

from glassy_jax.inference import plotting
from glassy_jax.programs import cli
from glassy_jax.scoring import baselines

COMMANDS = ("curves", "correlation_vs_time", "scatter", "snapshot")


def _define_flags() -> None:
  flags.DEFINE_string("workdir", None, "curves: training workdir.")
  flags.DEFINE_list("tables", None, "correlation_vs_time: evaluate CSVs.")
  flags.DEFINE_list("labels", None, "correlation_vs_time: one label per "
                    "table (default: file names).")
  flags.DEFINE_string("checkpoint", None, "scatter/snapshot: checkpoint "
                      "(.npz or TF prefix).")
  flags.DEFINE_string("input", None, "scatter/snapshot: DeepMind system.")
  flags.DEFINE_integer("time_index", None, "scatter/snapshot: target time "
                       "index (default: the checkpoint's).")
  flags.DEFINE_string("title", None, "scatter/snapshot: figure title "
                      "(default: the file name and target time).")
  flags.DEFINE_string("output", None, "PNG to write (curves default: "
                      "WORKDIR/curves.png).")


def _draw(args: flags.FlagValues, command: str) -> Figure:
  """The figure `command` names, from the flags."""
  if command == "curves":
    cli.require(args, command, "workdir")
    return plotting.learning_curves(args.workdir)
  if command == "correlation_vs_time":
    cli.require(args, command, "tables", "output")
    labels = args.labels or [os.path.splitext(os.path.basename(t))[0]
                             for t in args.tables]
    return plotting.correlation_vs_time(args.tables, labels,
                                        baselines.BASELINES)
  cli.require(args, command, "checkpoint", "input", "output")
  prediction = plotting.predict_file(args.checkpoint, args.input,
                                     args.time_index)
  snapshot = prediction.snapshot
  title = args.title or plotting.describe(prediction)
  if command == "scatter":
    if snapshot.targets is None:
      raise plotting.PlotError(f"{args.input}: has no targets to compare "
                               "with")
    return plotting.scatter(prediction.predictions, snapshot.targets,
                            snapshot.types, title)
  return plotting.slab_view(snapshot.positions, snapshot.box, snapshot.types,
                            prediction.predictions, snapshot.targets, title)


def main(args: flags.FlagValues, command: str) -> None:
  output = args.output or os.path.join(args.workdir or ".", "curves.png")
  print(f"wrote {plotting.save(_draw(args, command), output)}")


def run() -> None:
  cli.run(main, _define_flags, commands=COMMANDS)


if __name__ == "__main__":
  run()
