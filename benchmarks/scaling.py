"""Graph building, forward and forward+backward time and memory against N.

  python benchmarks/scaling.py [--copies=1,2,4] [--repeats=3] [--warmup=1] \
      [--edge_chunk_size=4096] [--remat] [--nobaseline]

N = 4096 x copies^3: periodic tiles of the 4096-particle KA glass (a real
structure at density 1.2, see train_step.load_glass). For each N and each
set of model options (the defaults, unless --nobaseline, and the
bounded-memory `model.edge_chunk_size` / `model.remat` of the flags) prints
one JSON line: graph building seconds, XLA's compile-time temporary memory
of the forward and of forward+backward, and the measured times and peak RSS
of whatever fits in this machine's memory.
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
from glassy_jax.network import models
from glassy_jax.physics import graphs as graphs_lib
from glassy_jax.scoring import metrics as metrics_lib

_COPIES = flags.DEFINE_list("copies", ["1", "2", "4"],
                            "Tiles per box side: N = 4096 copies^3.")
_IMPLEMENTATION = flags.DEFINE_string("implementation", "fused",
                                      "model.implementation.")
_EDGE_CHUNK_SIZE = flags.DEFINE_integer(
    "edge_chunk_size", 4096, "model.edge_chunk_size of the bounded-memory "
    "options (0: no such run).")
_REMAT = flags.DEFINE_boolean("remat", True,
                              "model.remat of the bounded-memory options.")
_BASELINE = flags.DEFINE_boolean(
    "baseline", True, "Also measure the default model options.")
_MEMORY_FRACTION = flags.DEFINE_float(
    "memory_fraction", 0.8, "Run only what XLA says needs less than this "
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


def compile_with_temp_mb(fn, *args):
  """`fn` compiled for `args`, and XLA's temporary buffer for one call."""
  compiled = fn.lower(*args).compile()
  return compiled, compiled.memory_analysis().temp_size_in_bytes / 2**20


def timed(run):
  """(median seconds, peak RSS MB) of `run()` after --warmup calls."""
  bench.reset_peak_memory()
  seconds = bench.median_seconds(run, flags.FLAGS.repeats,
                                 flags.FLAGS.warmup)
  return round(seconds, 3), round(bench.peak_memory_mb()[0], 1)


def measure(overrides, params, batch, budget_mb):
  """Temporary memory of the forward and of forward+backward under the
  model `overrides`, and their times and peak RSS where they fit."""
  network = models.make_network(bench.make_config(
      _IMPLEMENTATION.value, overrides).model)
  record = {}
  on_device = jax.device_put(batch)
  forward, record["forward_temp_mb"] = compile_with_temp_mb(
      jax.jit(network.apply), params, None, on_device.graph)
  if record["forward_temp_mb"] < budget_mb:
    record["forward_s"], record["forward_peak_rss_mb"] = timed(
        lambda: forward(params, None, on_device.graph).block_until_ready())
  del forward
  grad, record["grad_temp_mb"] = compile_with_temp_mb(
      loss_and_grad_fn(network), params, on_device)
  if record["grad_temp_mb"] < budget_mb:
    record["grad_s"], record["grad_peak_rss_mb"] = timed(
        lambda: jax.block_until_ready(grad(params, on_device)))
  return {key: round(value, 1) if key.endswith("_mb") else value
          for key, value in record.items()}


def main(argv):
  del argv
  base = bench.load_glass()
  # Parameters do not depend on N: made once, on the smallest graph.
  params = models.make_network(bench.make_config(
      _IMPLEMENTATION.value, []).model).init(
          jax.random.PRNGKey(0), graphs_lib.build_graph(base))
  print(f"# {base.name}; peak memory: {bench.peak_memory_mb()[1]}",
        flush=True)
  options = [[]] if _BASELINE.value else []
  if _EDGE_CHUNK_SIZE.value:
    options.append([f"model.edge_chunk_size={_EDGE_CHUNK_SIZE.value}",
                    f"model.remat={_REMAT.value}"])
  for copies in map(int, _COPIES.value):
    glass = bench.tile(base, copies) if copies > 1 else base
    start = time.perf_counter()
    graph = graphs_lib.build_graph(glass)
    build_s = time.perf_counter() - start
    batch = bench.padded_batch(graph, glass.types)
    for overrides in options:
      budget_mb = _MEMORY_FRACTION.value * available_bytes() / 2**20
      record = {"n_particles": len(glass.types),
                "n_edges": int(graph.n_edge[0]),
                "graph_build_s": round(build_s, 2),
                "overrides": overrides}
      record.update(measure(overrides, params, batch, budget_mb))
      record["memory_budget_mb"] = round(budget_mb, 1)
      print(json.dumps(record), flush=True)
    del graph, batch


if __name__ == "__main__":
  app.run(main)
