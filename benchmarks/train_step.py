"""Times the Bapst training step and forward pass on a 4096-particle glass.

  python benchmarks/train_step.py
  python benchmarks/train_step.py --implementations=fused \
      --set=model.compute_dtype=bfloat16 --set=model.remat=true

Prints one JSON line per implementation, then the reference/fused ratios
when both ran (same process, same graph, same parameters). See README.md for
the FLOP count and what `peak_memory_mb` measures.
"""

import json
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable, Dict, Tuple

from absl import app
from absl import flags
import jax
import jraph
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from glassy_jax.configs import bapst
from glassy_jax.formats import data as data_lib
from glassy_jax.formats import layouts
from glassy_jax.network import models
from glassy_jax.physics import graphs as graphs_lib
from glassy_jax.training import distributed
from glassy_jax.training import input_pipeline
from glassy_jax.training import run_config
from glassy_jax.training import train_step
# pylint: enable=g-import-not-at-top,wrong-import-position

REFERENCE_GLASS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "..", "shared", "reference",
                               "ka4096_T044.npz")
DENSITY = 1.2
B_FRACTION = 0.2

_IMPLEMENTATIONS = flags.DEFINE_list(
    "implementations", ["reference", "fused"], "model.implementation values.")
_SET = flags.DEFINE_multi_string(
    "set", [], "Config overrides KEY=VALUE (e.g. model.remat=true), applied "
    "to every implementation.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed runs (median kept).")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed runs after compiling.")


# --------------------------------------------------------------- the glass
def random_glass(n: int, seed: int = 0) -> data_lib.Snapshot:
  """Uniform positions at the KA density: timing only, not a glass."""
  rng = np.random.default_rng(seed)
  box = np.full(3, (n / DENSITY) ** (1 / 3))
  return data_lib.Snapshot(
      positions=rng.random((n, 3)) * box,
      types=(rng.random(n) < B_FRACTION).astype(np.int32),
      box=box, targets=None, name=f"random KA-density configuration, N={n}")


def load_glass() -> data_lib.Snapshot:
  """The LAMMPS KA glass, else a bundled demo system, else a random one."""
  if os.path.exists(REFERENCE_GLASS):
    system = np.load(REFERENCE_GLASS)
    return data_lib.Snapshot(system["positions"], system["types"],
                             system["box"], None,
                             os.path.normpath(REFERENCE_GLASS))
  try:
    files = layouts.list_files(input_pipeline.DEMO_DATA, "test", 1)
  except data_lib.DataError:
    files = []
  if files:
    return data_lib.to_snapshot(data_lib.load_system(files[0]), None)
  return random_glass(4096)


def tile(snapshot: data_lib.Snapshot, copies: int) -> data_lib.Snapshot:
  """`copies`^3 periodic images of a glass: a real structure, N x copies^3."""
  shifts = np.stack(np.meshgrid(*[np.arange(copies)] * 3, indexing="ij"),
                    -1).reshape(-1, 1, 3) * snapshot.box
  positions = (np.mod(snapshot.positions, snapshot.box) + shifts)
  return data_lib.Snapshot(
      positions.reshape(-1, 3), np.tile(snapshot.types, copies ** 3),
      snapshot.box * copies, None,
      f"{snapshot.name} tiled {copies}x{copies}x{copies}")


def padded_batch(graph: jraph.GraphsTuple, types: np.ndarray) -> input_pipeline.Batch:
  """The batch training feeds one device: padded as `train` pads it."""
  dataset = input_pipeline.Dataset([graph], [np.ones(len(types), np.float32)], [types],
                          ["benchmark"])
  budget = graphs_lib.padding_budget(dataset.graphs, 1)
  return input_pipeline.make_batch(dataset, [0], budget, input_pipeline.TargetScale(0.0, 1.0))


# ------------------------------------------------------------------ counts
def model_flop(model: Any, n_node: int, n_edge: int) -> float:
  """Forward FLOPs of the reference path: 2 * in * out per row per layer."""

  def mlp(in_size, sizes):
    total = 0
    for out_size in sizes:
      total += 2 * in_size * out_size
      in_size = out_size
    return total

  width = model.mlp_sizes[-1]
  node_in = 1 if model.node_features == "type" else 2
  steps = model.num_steps
  edge_block = 6 * width  # [h_e, enc_e] and two [h_v, enc_v].
  node_block = 3 * width if model.update_order == "sequential" else 4 * width
  return float(
      n_node * mlp(node_in, model.mlp_sizes) + n_edge * mlp(3, model.mlp_sizes)
      + steps * (n_edge * mlp(edge_block, model.mlp_sizes)
                 + n_node * mlp(node_block, model.mlp_sizes))
      + n_node * mlp(width, model.decoder_sizes))


def reset_peak_memory() -> None:
  """Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM)."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass


def peak_memory_mb() -> Tuple[float, str]:
  """Device peak when the backend reports it, else the process peak RSS."""
  stats = jax.local_devices()[0].memory_stats()
  if stats and "peak_bytes_in_use" in stats:
    return stats["peak_bytes_in_use"] / 2**20, "device peak_bytes_in_use"
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024, "process peak RSS (VmHWM)"
  except OSError:
    pass
  return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          "process peak RSS (getrusage, whole run)")


def median_seconds(run: Callable[[], Any], repeats: int, warmup: int) -> float:
  """Median wall time of `run()` (which must block) after `warmup` calls."""
  for _ in range(warmup):
    run()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


# --------------------------------------------------------------- the runs
def make_config(implementation: str, overrides):
  """configs/bapst.py with `implementation` and KEY=VALUE overrides."""
  config = bapst.get_config()
  config.model.implementation = implementation
  for override in overrides:
    key, value = override.split("=", 1)
    node = config
    *parents, leaf = key.split(".")
    for parent in parents:
      node = node[parent]
    current = node[leaf]
    if isinstance(current, bool):
      node[leaf] = value.lower() in ("1", "true", "yes")
    else:
      node[leaf] = type(current)(value)
  return config


def training_step_runner(config, network, params, batch: input_pipeline.Batch
                         ) -> Callable[[], None]:
  """`run()`: one real pmapped training step (one device here; augmentation,
  clipping and Adam included), waited for; each call continues from the
  last (the step donates its state)."""
  optimizer = train_step.make_optimizer(
      run_config.OptimizerConfig.of(config.optimizer), 1, 1)
  holder = [distributed.replicate(train_step.init_train_state(
      params, optimizer, jax.random.PRNGKey(1)), 1)]
  step = train_step.make_train_step(network, optimizer,
                                    config.train.augment_rotations)
  stacked = jax.device_put(input_pipeline.stack_batches([batch]))

  def run():
    holder[0], metrics = step(holder[0], stacked)
    jax.block_until_ready((holder[0], metrics))

  return run


def benchmark(config, batch: input_pipeline.Batch, repeats: int,
              warmup: int) -> Dict[str, Any]:
  """Forward and training-step seconds and peak memory of one config."""
  network = models.make_network(config.model)
  graph = jax.device_put(batch.graph)
  params = network.init(jax.random.PRNGKey(0), graph)
  forward = jax.jit(network.apply)
  reset_peak_memory()
  forward_s = median_seconds(
      lambda: forward(params, None, graph).block_until_ready(),
      repeats, warmup)
  result = {"forward_s": forward_s}
  run = training_step_runner(config, network, params, batch)
  result["step_s"] = median_seconds(run, repeats, warmup)
  result["peak_memory_mb"], result["peak_memory_source"] = peak_memory_mb()
  return result


def main(argv):
  del argv
  glass = load_glass()
  graph = graphs_lib.build_graph(glass)
  batch = padded_batch(graph, glass.types)
  n_node, n_edge = (int(batch.graph.nodes.shape[0]),
                    int(batch.graph.edges.shape[0]))
  device = jax.local_devices()[0]
  print(f"# {glass.name}: {len(glass.types)} particles, "
        f"{int(graph.n_edge[0])} edges (padded to {n_node} nodes, {n_edge} "
        f"edges); overrides {_SET.value or 'none'}", flush=True)
  steps, forwards = {}, {}
  for implementation in _IMPLEMENTATIONS.value:
    config = make_config(implementation, _SET.value)
    timings = benchmark(config, batch, _REPEATS.value, _WARMUP.value)
    flop = 3 * model_flop(config.model, n_node, n_edge)
    steps[implementation] = timings["step_s"]
    forwards[implementation] = timings["forward_s"]
    print(json.dumps({
        "implementation": implementation,
        "backend": jax.default_backend(),
        "device": device.device_kind,
        "n_edge": int(graph.n_edge[0]),
        "step_s": round(timings["step_s"], 4),
        "forward_s": round(timings["forward_s"], 4),
        "graphs_per_s": round(1 / timings["step_s"], 3),
        "model_gflop_per_step": round(flop / 1e9, 2),
        "achieved_gflops": round(flop / 1e9 / timings["step_s"], 1),
        "peak_memory_mb": round(timings["peak_memory_mb"], 1),
        "peak_memory_source": timings["peak_memory_source"],
        "overrides": _SET.value,
    }), flush=True)
  if "reference" in steps and "fused" in steps:
    print(json.dumps({
        "ratio_step_reference_over_fused":
            round(steps["reference"] / steps["fused"], 2),
        "ratio_forward_reference_over_fused":
            round(forwards["reference"] / forwards["fused"], 2)}))


if __name__ == "__main__":
  app.run(main)
