"""How long a checkpoint save holds up training: one `.npz` (the writer
before orbax, still used for `best.npz`), orbax synchronous, orbax
asynchronous, side by side in one process on the same training state.

    python benchmarks/checkpoint_save.py --repeats=10 [--directory=gs://...]

The state is the faithful network's (the bundled t044_s09 parameters) with
its Adam state, as `train.py` saves it. Per writer: the median time until
`save` returns (what the training loop waits), and for orbax async also the
median until the write is complete (`wait`). `--directory` may be a bucket
URL (orbax and `.npz` both write there). One JSON line per writer.
"""

import json
import statistics
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

from glassy_jax.formats import storage
from glassy_jax.training import checkpoints
from glassy_jax.training import run_config
from glassy_jax.training import train_step

_REPEATS = flags.DEFINE_integer("repeats", 10, "Saves per writer.")
_DIRECTORY = flags.DEFINE_string(
    "directory", None, "Where to write (default: a temporary folder).")


def _state():
  params, metadata = checkpoints.load_params("t044_s09")
  optimizer = train_step.make_optimizer(run_config.OptimizerConfig(), 100,
                                        1000)
  state = train_step.init_train_state(params, optimizer,
                                      jax.random.PRNGKey(0))
  return state._asdict(), metadata


def _timed(save, finish=lambda: None):
  """(seconds until `save` returns, seconds until `finish` returns)."""
  start = time.perf_counter()
  save()
  returned = time.perf_counter()
  finish()
  return returned - start, time.perf_counter() - start


def main(argv):
  del argv
  tree, metadata = _state()
  megabytes = sum(np.asarray(leaf).nbytes for leaf in
                  jax.tree_util.tree_leaves(tree)) / 2**20
  with tempfile.TemporaryDirectory() as scratch:
    root = _DIRECTORY.value or scratch
    steps = range(1, _REPEATS.value + 1)
    runs = {"npz": [_timed(lambda s=s: checkpoints.save(
        storage.join(root, "npz", f"ckpt_{s}.npz"), tree, metadata))
                    for s in steps]}
    for name, async_save in (("orbax_sync", False), ("orbax_async", True)):
      with checkpoints.CheckpointManager(storage.join(root, name),
                                         keep=2, async_save=async_save) as m:
        m.save(0, tree, metadata)  # Warm-up: orbax's first save sets up.
        m.wait()
        runs[name] = [_timed(lambda s=s: m.save(s, tree, metadata), m.wait)
                      for s in steps]
  for name, times in runs.items():
    print(json.dumps({
        "writer": name, "state_mib": round(megabytes, 2),
        "repeats": len(times), "directory": _DIRECTORY.value or "local tmp",
        "blocking_s_median": round(statistics.median(t for t, _ in times), 4),
        "complete_s_median": round(statistics.median(t for _, t in times), 4),
    }))


if __name__ == "__main__":
  app.run(main)
