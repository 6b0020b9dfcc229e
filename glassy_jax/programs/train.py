r"""The training program: `glassy-train`, or `python run_training.py`.

  glassy-train --config=configs/bapst.py --workdir=runs/bapst \
      --config.data.directory=/path/to/deepmind/data \
      --config.optimizer.learning_rate=1e-5

Metrics go to WORKDIR/metrics.jsonl (and TensorBoard event files in WORKDIR
with the `tensorboard` extra), checkpoints to WORKDIR/checkpoints (the best
by test correlation in best.npz), the final test metrics to
WORKDIR/report.md; rerunning with the same workdir resumes where the
previous run stopped. Every config value is checked before any work starts
(`run_config`), one `error:` line per bad value.

On several hosts run one process per host with
`--config.distributed.enabled=True` (cluster/README.md); only process 0
writes files, the others log warnings only.
"""

import os

from absl import flags
from absl import logging
import jax

from glassy_jax.programs import cli
from glassy_jax.training import distributed
from glassy_jax.training import train


def _define_flags() -> None:
  cli.define_config_flag("bapst", "Training configuration.",
                         lock_config=True)
  flags.DEFINE_string("workdir", "runs/bapst",
                      "Checkpoints and metrics go here.")


def main(args: flags.FlagValues) -> None:
  distributed.initialize(args.config)  # Before any backend is touched.
  if jax.process_index() > 0:
    logging.set_verbosity(logging.WARNING)
  logging.info("JAX %s, backend %s, devices: %s", jax.__version__,
               jax.default_backend(), jax.local_devices())
  train.train_and_evaluate(args.config, args.workdir)
  if jax.process_index() == 0:
    logging.info("final test metrics written to %s",
                 os.path.join(args.workdir, "report.md"))


def run() -> None:
  cli.run(main, _define_flags)


if __name__ == "__main__":
  run()
