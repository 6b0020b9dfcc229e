"""How much of the propensity the net force alone explains, per time index.

  python benchmarks/force_signal.py [--data=glassy_jax/demo_data --split=test]

Over a short time t a particle moves by v t + F t^2 / 2 (+ O(t^3)), so at
the shortest time indices the propensity follows |F|, a sum of vectors over
all neighbours, which no radial (distance-histogram) feature carries. Prints,
per time index, the Pearson r on A particles between |F| (Kob-Andersen
forces, `kob_andersen.forces`) and the target: mean +- std over the files.
"""

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from glassy_jax.formats import data as data_lib
from glassy_jax.formats import layouts
from glassy_jax.physics import kob_andersen
from glassy_jax.scoring import metrics
# pylint: enable=g-import-not-at-top,wrong-import-position

_DATA = flags.DEFINE_string("data", "glassy_jax/demo_data", "Dataset folder.")
_SPLIT = flags.DEFINE_string("split", "test", "train or test.")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  per_index = {index: [] for index in range(data_lib.NUM_TIME_INDICES)}
  times = {index: [] for index in per_index}
  for path in layouts.list_files(_DATA.value, _SPLIT.value):
    system = data_lib.load_system(path)
    types = np.asarray(system["types"])
    force = np.linalg.norm(kob_andersen.forces(
        system["positions"], types, system["box"]), axis=1)
    for index in per_index:
      target = data_lib.to_snapshot(system, index, path).targets
      per_index[index].append(metrics.pearson(force[types == 0],
                                              target[types == 0]))
      times[index].append(system["time"][system["time_indices"][index]])
  print("| time index | t (LJ, mean) | Pearson r(abs F, propensity), A |")
  print("|---|---|---|")
  for index, values in per_index.items():
    print(f"| {index} | {np.mean(times[index]):.3g} | {np.mean(values):.3f} +- "
          f"{np.std(values):.3f} |")


if __name__ == "__main__":
  app.run(main)
