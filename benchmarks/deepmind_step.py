"""Times DeepMind's published JAX training step against this project's.

DeepMind's `glassy_dynamics/train_using_jax.py` (deepmind-research,
Apache-2.0) is imported from `--deepmind_dir`; it is not part of this
repository. Get its `glassy_dynamics/` folder from DeepMind's
`deepmind-research` repository (google-deepmind on GitHub), then run from
the repository root:

  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python benchmarks/deepmind_step.py \
      --deepmind_dir=/tmp/deepmind-research/glassy_dynamics

(written against commit f5de0ede8430809180254ee957abf36ed62579ef; the output
records the sha256 of the file it imported).

One graph, both sides: the first bundled demo test system
(`glassy_jax/demo_data/test/aggregated-000.pickle`, 4096 particles, targets
at time index 0).

* DeepMind's side: their `make_graph_from_static_structure` (N^2 distances,
  padded to 4097 nodes / 200,000 edges) with targets and type-A mask padded
  as their `load_data` pads them (their `load_data` itself needs
  `trajectory_target_positions`, which the demo files store as precomputed
  `targets`). Their step is the `update` function their own `train_model`
  builds and jits, with its defaults (Adam, lr 1e-4, global-norm clip 1.0):
  `train_model(..., n_epochs=0)` runs with `load_data` answering that graph
  and `jax.jit` / `optax.chain` recording what it makes, so the timed
  function, its initial parameters (PRNGKey(42)) and optimiser state are
  theirs, not a transcription. By default it is timed on device-resident
  inputs without their per-step host-side `apply_random_rotation`
  (`--deepmind_host_rotation` adds it and the host-to-device copy, as their
  loop does); leaving it out favours them.
* Ours: `train_step.make_train_step` of `configs/bapst.py` (fused) on one
  device, set up as `benchmarks/train_step.py` times it (rotation
  augmentation, clipping and Adam included), graph padded as training pads
  it.

Same function: our parameters (fresh, and DeepMind's trained t044_s09 as
converted in this package) are mapped onto theirs; each network runs on its
own padded graph and the max prediction difference over the real nodes and
both losses are printed (the two edge sets are compared too). Their
processor differs in two ways the mapping absorbs: the edge MLP reads
[edge, sender, receiver] (ours and the TF original: [edge, receiver,
sender]), rows permuted; and their node MLP also reads the sum of *sent*
messages (jraph `InteractionNetwork`,
`include_sent_messages_in_node_update=True`; not in the TF model): those 64
input rows are set to zero. Their step therefore does slightly more work per
message-passing step (one more [E, 64] segment sum, a 256- instead of
192-wide node layer).

Shims (their file is not edited):
* `tensorflow.compat.v1`, which they import only for `tf.io.gfile.glob` and
  `tf.io.gfile.GFile`, is a stub module with `glob.glob` and `open` when
  TensorFlow is not installed;
* while `train_model(n_epochs=0)` runs (only then): their module's
  `load_data` returns the example above, `jax.jit` and `optax.chain` record
  what they make (above).
Nothing else was needed under jax/jaxlib 0.10.2, dm-haiku 0.0.17, jraph
0.0.6.dev0 and optax 0.2.8: no old-API aliases.

Timing: both compiled, `--warmup` (train_step.py's flag, default 2) calls
each, then `--pairs` pairs of (DeepMind step, our step), each call ending in
`block_until_ready`. One JSON line: medians, the DeepMind/ours ratio,
versions, CPU model, date and edge counts. Importing train_step.py also
defines its --implementations, --set and --repeats flags: ignored here.
"""

import datetime
import glob
import hashlib
import importlib
import importlib.util
import json
import os
import statistics
import sys
import time
import types

from absl import app
from absl import flags
import haiku as hk
import jax
import jaxlib
import jraph
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=g-import-not-at-top,wrong-import-position
import train_step as train_step_bench  # Also puts the repository on the path.
from glassy_jax.formats import data as data_lib
from glassy_jax.formats import layouts
from glassy_jax.network import models
from glassy_jax.physics import graphs as graphs_lib
from glassy_jax.scoring import metrics as metrics_lib
from glassy_jax.training import checkpoints
from glassy_jax.training import input_pipeline
# pylint: enable=g-import-not-at-top,wrong-import-position

_DEEPMIND_DIR = flags.DEFINE_string(
    "deepmind_dir", None, "Folder holding DeepMind's train_using_jax.py "
    "(deepmind-research/glassy_dynamics).", required=True)
_PAIRS = flags.DEFINE_integer("pairs", 7, "Timed (DeepMind, ours) pairs.")
_HOST_ROTATION = flags.DEFINE_bool(
    "deepmind_host_rotation", False, "Time DeepMind's step as their loop "
    "runs it: numpy apply_random_rotation and host inputs each call.")
TIME_INDEX = 0
CUTOFF = 2.0  # Their edge_threshold.

# Their haiku modules, in the order network_definition makes them.
OURS_TO_DEEPMIND = {
    "bapst/~/encoder_node": "mlp",
    "bapst/~/encoder_edge": "mlp_1",
    "bapst/~/decoder": "mlp_2",
    "bapst/~/processor_edge": "mlp_3",
    "bapst/~/processor_node": "mlp_4",
}


# --------------------------------------------------------- DeepMind's code
def import_deepmind(directory: str) -> types.ModuleType:
  """Their module, with a file-access stub if TensorFlow is absent."""
  if importlib.util.find_spec("tensorflow") is None:
    v1 = types.ModuleType("tensorflow.compat.v1")
    v1.io = types.SimpleNamespace(
        gfile=types.SimpleNamespace(glob=glob.glob, GFile=open))
    compat = types.ModuleType("tensorflow.compat")
    compat.v1 = v1
    tf = types.ModuleType("tensorflow")
    tf.compat = compat
    sys.modules.update({"tensorflow": tf, "tensorflow.compat": compat,
                        "tensorflow.compat.v1": v1})
  sys.path.insert(0, os.path.abspath(directory))
  return importlib.import_module("train_using_jax")


def deepmind_example(dm, system, targets):
  """(graph, targets, mask) as their load_data makes them, targets given."""
  graph = dm.make_graph_from_static_structure(
      system["positions"].astype(np.float32),
      system["types"].astype(np.int32), system["box"].astype(np.float32),
      edge_threshold=CUTOFF)
  mask = (system["types"] == dm.ParticleType.A).astype(np.int32)
  return (graph, np.concatenate([targets, np.zeros(1, np.float32)]),
          np.concatenate([mask, np.zeros(1, np.int32)]))


def deepmind_train_step(dm, example):
  """(update, loss_fn, network_apply, params, opt_state) from their
  train_model, run for zero epochs on `example`."""
  jitted, made = [], {}  # (name, jitted function) in the order made.
  real_jit, real_chain, real_load = jax.jit, optax.chain, dm.load_data

  def recording_jit(fun, *args, **kwargs):
    compiled = real_jit(fun, *args, **kwargs)
    jitted.append((getattr(fun, "__name__", ""), compiled))
    return compiled

  def recording_chain(*transforms):
    chained = real_chain(*transforms)

    def init(params):
      made["params"] = params
      made["opt_state"] = chained.init(params)
      return made["opt_state"]

    return optax.GradientTransformation(init, chained.update)

  jax.jit, optax.chain = recording_jit, recording_chain
  dm.load_data = lambda *args, **kwargs: [example]
  try:
    dm.train_model("(demo)", "(demo)", n_epochs=0, time_index=TIME_INDEX)
  finally:
    jax.jit, optax.chain, dm.load_data = real_jit, real_chain, real_load
  names = [name for name, _ in jitted]
  if names[-2:] != ["loss_fn", "update"] or "params" not in made:
    raise RuntimeError(f"train_model no longer jits network_apply, loss_fn, "
                       f"update and makes its optimiser as expected: {names}")
  # network_apply = jax.jit(network.apply) is made just before loss_fn.
  return (jitted[-1][1], jitted[-2][1], jitted[-3][1], made["params"],
          made["opt_state"])


def to_deepmind_params(ours, width: int):
  """Our parameters in their layout: the same function (module doc)."""
  params = {}
  for module, leaves in ours.items():
    scope, _, layer = module.rpartition("/~/")
    w, b = np.asarray(leaves["w"]), np.asarray(leaves["b"])
    if layer == "linear_0" and scope == "bapst/~/processor_edge":
      # [h_e, enc_e, receiver (h_v, enc_v), sender] -> [.., sender, receiver].
      w = np.concatenate([w[:2 * width], w[4 * width:], w[2 * width:4 * width]])
    elif layer == "linear_0" and scope == "bapst/~/processor_node":
      # [received, h_v, enc_v] -> [h_v, enc_v, sent (unused), received].
      w = np.concatenate([w[width:], np.zeros((width, w.shape[1]), w.dtype),
                          w[:width]])
    params[f"{OURS_TO_DEEPMIND[scope]}/~/{layer}"] = {"w": w, "b": b}
  return params


# ------------------------------------------------------------------ helpers
def edge_agreement(dm_graph: jraph.GraphsTuple, graph: jraph.GraphsTuple,
                   n: int):
  """(same (sender, receiver) set, max |vector difference| on it)."""
  def keyed(g):
    count = int(g.n_edge[0])
    key = g.senders[:count].astype(np.int64) * n + g.receivers[:count]
    order = np.argsort(key)
    return key[order], np.asarray(g.edges[:count])[order]

  dm_keys, dm_vectors = keyed(dm_graph)
  keys, vectors = keyed(graph)
  if not np.array_equal(dm_keys, keys):
    return False, float("nan")
  return True, float(np.abs(dm_vectors - vectors).max())


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return "unknown"


def seconds(run) -> float:
  start = time.perf_counter()
  run()
  return time.perf_counter() - start


def main(argv):
  del argv
  dm = import_deepmind(_DEEPMIND_DIR.value)
  with open(dm.__file__, "rb") as f:
    dm_sha256 = hashlib.sha256(f.read()).hexdigest()
  path = layouts.list_files(input_pipeline.DEMO_DATA, "test", 1)[0]
  system = data_lib.load_system(path)
  glass = data_lib.to_snapshot(system, TIME_INDEX, path)
  n = len(glass.types)

  # DeepMind's graph, network, loss and step.
  example = deepmind_example(dm, system, glass.targets)
  update, dm_loss_fn, dm_apply, dm_params, dm_opt_state = (
      deepmind_train_step(dm, example))
  dm_graph = example[0]

  # Ours, as benchmarks/train_step.py sets it up (real targets here).
  config = train_step_bench.make_config("fused", [])
  graph = graphs_lib.build_graph(glass, CUTOFF)
  dataset = input_pipeline.Dataset([graph], [glass.targets], [glass.types], [path])
  batch = input_pipeline.make_batch(dataset, [0],
                           graphs_lib.padding_budget(dataset.graphs, 1),
                           input_pipeline.TargetScale(0.0, 1.0))
  network = models.make_network(config.model)
  params = network.init(jax.random.PRNGKey(0), jax.device_put(batch.graph))
  run_ours = train_step_bench.training_step_runner(config, network, params,
                                                   batch)

  # Same function: our parameters through both networks, real nodes only.
  same_edges, vector_diff = edge_agreement(dm_graph, graph, n)
  print(f"# {path}: {n} particles; edges DeepMind {int(dm_graph.n_edge[0])} "
        f"(padded {dm_graph.edges.shape[0]}), ours {int(graph.n_edge[0])} "
        f"(padded {batch.graph.edges.shape[0]}); same edge set: {same_edges} "
        f"(max |vector diff| {vector_diff:.2g})", flush=True)
  forward = jax.jit(network.apply)
  agreement = {}
  for name, checked in (("init", params), (
      "t044_s09", checkpoints.load_params("t044_s09")[0])):
    ours_pred = np.asarray(forward(checked, None, batch.graph))[:n]
    mapped = to_deepmind_params(checked, config.model.mlp_sizes[-1])
    if jax.tree.structure(mapped) != jax.tree.structure(dm_params) or any(
        a.shape != b.shape for a, b in zip(jax.tree.leaves(mapped),
                                           jax.tree.leaves(dm_params))):
      raise RuntimeError("their parameters no longer have our layout")
    dm_pred = np.asarray(dm_apply(mapped, dm_graph))[:n]
    sse, count = metrics_lib.masked_squared_error_sum(
        ours_pred, batch.targets[:n], batch.loss_mask[:n])
    agreement[name] = {
        "max_abs_prediction_diff": float(np.abs(dm_pred - ours_pred).max()),
        "max_abs_prediction": float(np.abs(ours_pred).max()),
        "loss_deepmind": float(dm_loss_fn(mapped, *example)),
        "loss_ours": float(sse / count)}
    print(f"# same parameters ({name}): " + ", ".join(
        f"{k} {v:.4g}" for k, v in agreement[name].items()), flush=True)

  # Timing.
  # Their loop rotates the numpy graph and feeds host arrays every step.
  host = _HOST_ROTATION.value
  dm_inputs = example if host else jax.device_put(example)
  rotate = dm.apply_random_rotation if host else (lambda g: g)
  dm_holder = [(dm_params, dm_opt_state)]

  def run_deepmind():
    out = update(*dm_holder[0], rotate(dm_inputs[0]), *dm_inputs[1:])
    jax.block_until_ready(out)
    dm_holder[0] = out[:2]

  compile_s = {"deepmind": seconds(run_deepmind), "ours": seconds(run_ours)}
  for _ in range(flags.FLAGS.warmup):
    run_deepmind()
    run_ours()
  dm_times, our_times = [], []
  for _ in range(_PAIRS.value):
    dm_times.append(seconds(run_deepmind))
    our_times.append(seconds(run_ours))
  dm_s, ours_s = statistics.median(dm_times), statistics.median(our_times)
  print(json.dumps({
      "deepmind_step_s": round(dm_s, 4),
      "ours_step_s": round(ours_s, 4),
      "ratio_deepmind_over_ours": round(dm_s / ours_s, 2),
      "pairs": _PAIRS.value,
      "warmup": flags.FLAGS.warmup,
      "deepmind_times_s": [round(t, 4) for t in dm_times],
      "ours_times_s": [round(t, 4) for t in our_times],
      "first_call_s": {k: round(v, 2) for k, v in compile_s.items()},
      "deepmind_host_rotation": _HOST_ROTATION.value,
      "n_edge": int(graph.n_edge[0]),
      "n_edge_deepmind": int(dm_graph.n_edge[0]),
      "padded_edges": {"deepmind": int(dm_graph.edges.shape[0]),
                       "ours": int(batch.graph.edges.shape[0])},
      "same_edge_set": same_edges,
      "same_parameters": agreement,
      "graph": os.path.relpath(path),
      "deepmind_file_sha256": dm_sha256,
      "jax": jax.__version__,
      "versions": {"jaxlib": jaxlib.__version__, "haiku": hk.__version__,
                   "jraph": jraph.__version__, "optax": optax.__version__},
      "backend": jax.default_backend(),
      "cpu": cpu_model(),
      "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
  }), flush=True)


if __name__ == "__main__":
  app.run(main)
