"""Trains the Bapst et al. (2020) glassy-dynamics graph network.

  python run_training.py --config=configs/bapst.py --workdir=runs/bapst \
      --config.data.directory=/path/to/deepmind/data \
      --config.optimizer.learning_rate=1e-5

Metrics go to WORKDIR/metrics.jsonl (and TensorBoard event files in
WORKDIR with the `tensorboard` extra), checkpoints to WORKDIR/checkpoints (the
best by test correlation in best.npz); rerunning with the same workdir
resumes where the previous run stopped.

On several hosts run one process per host with
`--config.distributed.enabled=True` (cluster/README.md); only process 0
writes files, the others log warnings only.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from glassy_jax import atomic
from glassy_jax import checkpoints
from glassy_jax import data as data_lib
from glassy_jax import distributed
from glassy_jax import train

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/bapst.py", "Training configuration.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/bapst",
                               "Checkpoints and metrics go here.")


def parse_flags(argv):
  """absl parsing, with bad flags, configs and overrides told in one line."""
  try:
    argv = flags.FLAGS(argv)
    _CONFIG.value.keys()  # Loads lazily: surface its errors here.
  except (flags.Error, AttributeError, KeyError, OSError, TypeError,
          ValueError) as e:
    text = str(e).replace("\\n", "\n").replace("\\'", "")
    if "Traceback" in text:  # config_flags embeds the get_config traceback.
      text = text.strip().splitlines()[-1]
    sys.exit(f"error: bad flag or config: {' '.join(text.split())}")
  return argv


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    distributed.initialize(_CONFIG.value)  # Before any backend is touched.
    if jax.process_index() > 0:
      logging.set_verbosity(logging.WARNING)
    logging.info("JAX %s, backend %s, devices: %s", jax.__version__,
                 jax.default_backend(), jax.local_devices())
    final = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    if jax.process_index() == 0:
      report = os.path.join(_WORKDIR.value, "report.md")
      train.write_report(report, final)
      logging.info("final test metrics written to %s", report)
  except (data_lib.DataError, checkpoints.CheckpointError, ValueError,
          train.TrainingDiverged) as e:
    sys.exit(f"error: {e}")
  except OSError as e:  # Reads fail as DataError/CheckpointError: a write.
    sys.exit(f"error: {atomic.write_error(e.filename or _WORKDIR.value, e)}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
