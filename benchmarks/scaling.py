"""Graph building, forward and forward+backward time and memory against N.

  python benchmarks/scaling.py [--copies=1,2,4] [--repeats=3]

N = 4096 x copies^3: periodic tiles of the 4096-particle KA glass (a real
structure at density 1.2, see train_step.load_glass). For each N prints one
JSON line: graph building seconds, XLA's compile-time temporary memory for
the forward and for forward+backward (with and without `model.remat`), and
the measured times and peak RSS of whatever fits in this machine's memory.
"""

import json
import time

from absl import app
from absl import flags
import jax

# benchmarks/ is the script's directory; train_step puts the repository on
# sys.path for the glassy_jax imports below.
import train_step as bench
# pylint: disable=g-bad-import-order,wrong-import-order
from glassy_jax import graphs as graphs_lib
from glassy_jax import metrics as metrics_lib
from glassy_jax import models

_COPIES = flags.DEFINE_list("copies", ["1", "2", "4"],
                            "Tiles per box side: N = 4096 copies^3.")
_IMPLEMENTATION = flags.DEFINE_string("implementation", "fused",
                                      "model.implementation.")
_MEMORY_FRACTION = flags.DEFINE_float(
    "memory_fraction", 0.7, "Run only what XLA says needs less than this "
    "fraction of the memory available now.")


def available_bytes() -> int:
  with open("/proc/meminfo") as f:
    for line in f:
      if line.startswith("MemAvailable:"):
        return int(line.split()[1]) * 1024
  raise OSError("no MemAvailable in /proc/meminfo")


def loss_and_grad_fn(network):
  """What a training step computes, minus the (negligible) optimizer."""

  def loss(params, batch):
    predictions = network.apply(params, None, batch.graph)
    sse, count = metrics_lib.masked_squared_error_sum(
        predictions, batch.targets, batch.loss_mask)
    return sse / count

  return jax.jit(jax.value_and_grad(loss))


def temp_mb(fn, *args) -> float:
  """XLA's temporary buffer for `fn(*args)`, known without running it."""
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                          args)
  analysis = fn.lower(*abstract).compile().memory_analysis()
  return analysis.temp_size_in_bytes / 2**20


def timed(run, repeats):
  """(median seconds, peak RSS MB) of `run()` after one warm-up call."""
  bench.reset_peak_memory()
  run()
  seconds = bench.median_seconds(run, repeats, warmup=0)
  return round(seconds, 3), round(bench.peak_memory_mb()[0], 1)


def main(argv):
  del argv
  base = bench.load_glass()
  # Parameters do not depend on N: made once, on the smallest graph.
  params = models.make_network(bench.make_config(
      _IMPLEMENTATION.value, []).model).init(
          jax.random.PRNGKey(0), graphs_lib.build_graph(base))
  print(f"# {base.name}; peak memory: {bench.peak_memory_mb()[1]}",
        flush=True)
  for copies in map(int, _COPIES.value):
    glass = bench.tile(base, copies) if copies > 1 else base
    start = time.perf_counter()
    graph = graphs_lib.build_graph(glass)
    build_s = time.perf_counter() - start
    batch = bench.padded_batch(graph, glass.types)
    record = {"n_particles": len(glass.types),
              "n_edges": int(graph.n_edge[0]),
              "graph_build_s": round(build_s, 2)}
    budget = _MEMORY_FRACTION.value * available_bytes() / 2**20
    for remat in (False, True):
      config = bench.make_config(_IMPLEMENTATION.value,
                                 [f"model.remat={remat}"])
      network = models.make_network(config.model)
      forward = jax.jit(network.apply)
      grad = loss_and_grad_fn(network)
      suffix = "_remat" if remat else ""
      if not remat:
        record["forward_temp_mb"] = round(
            temp_mb(forward, params, None, batch.graph), 1)
        if record["forward_temp_mb"] < budget:
          graph_on_device = jax.device_put(batch.graph)
          record["forward_s"], record["forward_peak_rss_mb"] = timed(
              lambda: forward(params, None,
                              graph_on_device).block_until_ready(),
              flags.FLAGS.repeats)
      record[f"grad_temp_mb{suffix}"] = round(temp_mb(grad, params, batch), 1)
      if record[f"grad_temp_mb{suffix}"] < budget:
        on_device = jax.device_put(batch)
        record[f"grad_s{suffix}"], record[f"grad_peak_rss_mb{suffix}"] = (
            timed(lambda: jax.block_until_ready(grad(params, on_device)),
                  flags.FLAGS.repeats))
    record["memory_budget_mb"] = round(budget, 1)
    print(json.dumps(record), flush=True)
    del graph, batch


if __name__ == "__main__":
  app.run(main)
