"""Training and evaluation: optax Adam, pmap data parallelism, checkpoints.

One update takes `graphs_per_device` graphs on each local device (DeepMind:
one graph, one device). Each device scores its own graphs; squared errors and
A-particle counts are summed across devices before dividing, so a pmapped
step is the step one device would take on the whole global batch.

The data order of epoch e is a permutation seeded by (seed, e), and the
augmentation key of step s is fold_in(key, s): the step counter alone says
where a run is, which makes resumption exact.

Graphs of different sizes are grouped into size buckets (node counts rounded
up to `data.bucket_nodes`), each with its own padding budget, so small
snapshots are not padded to the largest; a step draws all its graphs from one
bucket and each bucket compiles once. With one bucket the order above is
unchanged.

Multi-host (`distributed.enabled`, see glassy_jax/distributed.py): with P
processes, process p reads only files p::P of each split and draws its part
of every step from a permutation of that shard seeded by (seed, epoch); the
global batch is P x local devices x graphs per device, and the pmapped psum
sums over all of them. Only process 0 writes checkpoints and metrics; it
restores a checkpoint and broadcasts it. A checkpoint holds params,
optimiser state and step, not the layout, so a run resumes on any number of
hosts; steps per epoch, and with them the data order and epoch-based
schedules, then follow the new layout.
"""

import json
import os
import signal
import time
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple

from absl import logging
import haiku as hk
import jax
import jax.numpy as jnp
import jraph
import ml_collections
import numpy as np
import optax

from glassy_jax import atomic
from glassy_jax import checkpoints
from glassy_jax import data as data_lib
from glassy_jax import distributed
from glassy_jax import graphs as graphs_lib
from glassy_jax import metric_writers
from glassy_jax import metrics as metrics_lib
from glassy_jax import models

AXIS = "devices"
DEMO_DATA = os.path.join(os.path.dirname(__file__), "demo_data")


class Dataset(NamedTuple):
  """Graphs of one split with their targets, unpadded, on the host."""
  graphs: List[jraph.GraphsTuple]
  targets: List[np.ndarray]  # [N] float32 each, in physical units.
  types: List[np.ndarray]  # [N] int32 each.
  names: List[str]
  # (p, P): these are files p::P of the split; graph i is file p + i * P.
  shard: Tuple[int, int] = (0, 1)

  def file_index(self, i: int) -> int:
    """Index in the whole split: keys augmentation the same on any layout."""
    return self.shard[0] + i * self.shard[1]


class Batch(NamedTuple):
  """What a device receives per step; leading [devices] axis when pmapped."""
  graph: jraph.GraphsTuple  # Padded to the run's budget.
  targets: np.ndarray  # [n_node], standardised if configured.
  loss_mask: np.ndarray  # [n_node] bool: real type-A particles.
  first_graph: np.ndarray  # [] int32: dataset index; keys the augmentation.


class TrainState(NamedTuple):
  params: hk.Params
  opt_state: optax.OptState
  step: jax.Array  # [] int32: steps taken so far.
  rng: jax.Array  # Base key; step s augments with fold_in(rng, s).
  lr_scale: jax.Array  # [] float32: 1, halved by each divergence rollback.


def init_train_state(params: hk.Params, optimizer: optax.GradientTransformation,
                     rng: jax.Array) -> TrainState:
  return TrainState(params, optimizer.init(params), np.int32(0), rng,
                    np.float32(1.0))


class TargetScale(NamedTuple):
  """Targets are trained as (t - mean) / std; (0, 1) when not standardised."""
  mean: float
  std: float


# ------------------------------------------------------------------ data
def data_directory(config: ml_collections.ConfigDict) -> str:
  if config.data.directory:
    return config.data.directory
  logging.info("data.directory is unset: using the bundled demo data in %s. "
               "For DeepMind's dataset pass --config.data.directory=DIR "
               "(DIR/train/aggregated*, DIR/test/aggregated*).", DEMO_DATA)
  return DEMO_DATA


def load_dataset(directory: str, split: str, time_index: int, cutoff: float,
                 max_files: int = 0, shard: Tuple[int, int] = (0, 1)
                 ) -> Dataset:
  """Builds the graphs of files p::P of `DIR/split/aggregated*`, (p, P) =
  `shard`: each process of a multi-host run reads only its own files."""
  files = data_lib.list_files(directory, split, max_files or None)
  process, num_processes = shard
  if len(files) < num_processes:
    raise data_lib.DataError(
        f"{len(files)} {split} files cannot give each of {num_processes} "
        "processes one")
  snapshots = data_lib.load_snapshots(files[process::num_processes],
                                      time_index, progress=process == 0)
  return Dataset(
      graphs=[graphs_lib.build_graph(s, cutoff) for s in snapshots],
      targets=[s.targets for s in snapshots],
      types=[s.types for s in snapshots],
      names=[s.name for s in snapshots], shard=shard)


def target_scale(dataset: Dataset, standardize: bool) -> TargetScale:
  """Statistics of the type-A targets of every process's shard."""
  if not standardize:
    return TargetScale(0.0, 1.0)
  values = distributed.allgather_rows(np.concatenate(
      [t[ty == 0] for t, ty in zip(dataset.targets, dataset.types)]))
  return TargetScale(float(values.mean()), float(values.std()))


def make_batch(dataset: Dataset, indices: Sequence[int],
               budget: graphs_lib.PaddingBudget, scale: TargetScale) -> Batch:
  graph, targets, mask = graphs_lib.pad_batch(
      [dataset.graphs[i] for i in indices],
      [(dataset.targets[i] - scale.mean) / scale.std for i in indices], budget)
  types = graph.nodes[:, 0]
  return Batch(graph, targets, mask & (types == 0),
               np.int32(dataset.file_index(indices[0])))


def stack_batches(batches: Sequence[Batch]) -> Batch:
  """One batch per local device -> arrays with a leading device axis."""
  return jax.tree.map(lambda *xs: np.stack(xs), *batches)


class SizeBucket(NamedTuple):
  """Graphs of similar size, batched together under one padding budget."""
  budget: graphs_lib.PaddingBudget  # Per device; the same on every process.
  members: np.ndarray  # This process's graphs in the bucket (local indices).
  steps: int  # Batches per epoch, the same on every process.


def _budget(n_node: np.ndarray, n_edge: np.ndarray,
            graphs_per_batch: int) -> graphs_lib.PaddingBudget:
  """`graphs.padding_budget` from sizes alone (other hosts' graphs)."""
  sizes = [jraph.GraphsTuple(nodes=None, edges=None, senders=None,
                             receivers=None, globals=None, n_node=np.array([n]),
                             n_edge=np.array([e]))
           for n, e in zip(n_node, n_edge)]
  return graphs_lib.padding_budget(sizes, graphs_per_batch)


def bucket_keys(n_node: Sequence[int], multiple: int) -> np.ndarray:
  """Node counts rounded up to `multiple` (0: every graph in one bucket)."""
  n_node = np.asarray(n_node, np.int64)
  return -(-n_node // multiple) if multiple else np.zeros(len(n_node), int)


def size_buckets(n_node: np.ndarray, n_edge: np.ndarray, per_device: int,
                 num_devices: int, multiple: int, process: int = 0,
                 num_processes: int = 1) -> List[SizeBucket]:
  """Groups the graphs of a split into size buckets.

  `n_node`/`n_edge` hold the sizes of every file of the split (the same on
  every process); file g is graph g // P of process g % P. Buckets are node
  counts rounded up to `multiple` (0: one bucket). A bucket in which some
  process holds fewer graphs than its local batch is merged into the next
  larger one (the largest into the one before it).
  """
  local_batch = per_device * num_devices
  keys = bucket_keys(n_node, multiple)
  owner = np.arange(len(n_node)) % num_processes

  def fills(files):
    return np.bincount(owner[files], minlength=num_processes).min() >= (
        local_batch)

  groups, pending = [], np.zeros(0, int)
  for key in np.unique(keys):
    pending = np.concatenate([pending, np.flatnonzero(keys == key)])
    if fills(pending):
      groups.append(pending)
      pending = np.zeros(0, int)
  if len(pending):
    if not groups:
      raise data_lib.DataError(
          f"{len(n_node)} training graphs cannot fill a global batch of "
          f"{num_processes * local_batch} ({num_processes} processes x "
          f"{num_devices} devices x {per_device})")
    groups[-1] = np.concatenate([groups[-1], pending])
  buckets = []
  for files in groups:
    files = np.sort(files)
    counts = np.bincount(owner[files], minlength=num_processes)
    buckets.append(SizeBucket(
        budget=_budget(np.asarray(n_node)[files], np.asarray(n_edge)[files],
                       per_device),
        members=files[owner[files] == process] // num_processes,
        steps=int(counts.min()) // local_batch))
  return buckets


def epoch_plan(buckets: Sequence[SizeBucket], seed: int, epoch: int,
               local_batch: int) -> List[Tuple[int, np.ndarray]]:
  """(bucket, local graph indices) of every step of `epoch` on this process.

  Each bucket's graphs are permuted by one generator seeded by (seed,
  epoch); the order in which buckets take turns is drawn from (seed, epoch,
  1), the same on every process. With one bucket on one process the graphs
  of epoch e are `default_rng([seed, e]).permutation(num_graphs)`.
  """
  rng = np.random.default_rng([seed, epoch])
  orders = [b.members[rng.permutation(len(b.members))] for b in buckets]
  turns = np.random.default_rng([seed, epoch, 1]).permutation(
      np.concatenate([np.full(b.steps, i) for i, b in enumerate(buckets)]))
  taken = [0] * len(buckets)
  plan = []
  for i in turns:
    plan.append((int(i), orders[i][taken[i]:taken[i] + local_batch]))
    taken[i] += local_batch
  return plan


def _global_sizes(dataset: Dataset) -> Tuple[np.ndarray, np.ndarray]:
  """Node and edge counts of every file of the split, from all processes."""
  rows = distributed.allgather_rows(np.array(
      [[dataset.file_index(i), int(g.n_node.sum()), int(g.n_edge.sum())]
       for i, g in enumerate(dataset.graphs)], np.int64))
  rows = rows[np.argsort(rows[:, 0])]
  return rows[:, 1], rows[:, 2]


def _eval_budgets(graphs: Sequence[jraph.GraphsTuple],
                  multiple: int) -> List[graphs_lib.PaddingBudget]:
  """Each graph's padding budget (one graph): that of its size bucket."""
  keys = bucket_keys([int(g.n_node.sum()) for g in graphs], multiple)
  budgets = {key: graphs_lib.padding_budget(
      [g for g, k in zip(graphs, keys) if k == key], 1) for key in set(keys)}
  return [budgets[k] for k in keys]


# ------------------------------------------------------------ optimisation
def make_optimizer(config: ml_collections.ConfigDict,
                   steps_per_epoch: int, total_steps: int
                   ) -> optax.GradientTransformation:
  opt = config.optimizer
  if opt.schedule == "constant":
    schedule = optax.constant_schedule(opt.learning_rate)
  elif opt.schedule == "step":
    schedule = optax.exponential_decay(
        opt.learning_rate, transition_steps=opt.step_epochs * steps_per_epoch,
        decay_rate=opt.step_gamma, staircase=True)
  elif opt.schedule == "cosine":
    warmup = opt.warmup_steps
    schedule = (optax.warmup_cosine_decay_schedule(
        0.0, opt.learning_rate, warmup, max(total_steps, warmup + 1))
                if warmup else
                optax.cosine_decay_schedule(opt.learning_rate, total_steps))
  else:
    raise ValueError(f"optimizer.schedule must be constant, step or cosine, "
                     f"got {opt.schedule!r}")
  clip = ([optax.clip_by_global_norm(opt.clip_global_norm)]
          if opt.clip_global_norm > 0 else [])
  return optax.chain(*clip, optax.scale_by_adam(opt.b1, opt.b2, opt.eps),
                     optax.scale_by_learning_rate(schedule))


def augment_edges(rng: jax.Array, edges: jax.Array) -> jax.Array:
  """A random permutation of the x, y, z axes and a random sign per axis."""
  perm_key, sign_key = jax.random.split(rng)
  permutation = jax.random.permutation(perm_key, 3)
  signs = jax.random.rademacher(sign_key, (3,), dtype=edges.dtype)
  return edges[:, permutation] * signs


def make_train_step(network: hk.Transformed,
                    optimizer: optax.GradientTransformation,
                    augment: bool):
  """The pmapped update: state and batch carry a leading device axis."""

  def train_step(state: TrainState, batch: Batch
                 ) -> Tuple[TrainState, Dict[str, jax.Array]]:
    graph = batch.graph
    if augment:
      # Keyed by step and graph, not by device: the same run on any number
      # of devices or hosts draws the same rotations.
      key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step),
                               batch.first_graph)
      graph = graph._replace(edges=augment_edges(key, graph.edges))
    count = jax.lax.psum(jnp.sum(batch.loss_mask), AXIS)

    def loss_fn(params):
      predictions = network.apply(params, None, graph)
      sse, _ = metrics_lib.masked_squared_error_sum(
          predictions, batch.targets, batch.loss_mask)
      return sse / count

    local_loss, local_grads = jax.value_and_grad(loss_fn)(state.params)
    loss = jax.lax.psum(local_loss, AXIS)
    grads = jax.lax.psum(local_grads, AXIS)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(
        state.params, jax.tree.map(lambda u: u * state.lr_scale, updates))
    # A non-finite loss or gradient leaves parameters and moments untouched.
    params, opt_state = jax.tree.map(
        lambda new, old: jnp.where(finite, new, old),
        (params, opt_state), (state.params, state.opt_state))
    new_state = state._replace(params=params, opt_state=opt_state,
                               step=state.step + 1)
    return new_state, {"loss": loss, "grad_norm": grad_norm,
                       "finite": finite}

  return jax.pmap(train_step, axis_name=AXIS, donate_argnums=(0,))


def replicate(tree: Any, num_devices: int = 0) -> Any:
  """One copy per local device (or the first `num_devices`), laid out as pmap
  lays out its outputs, so the first step compiles once, not twice."""
  devices = jax.local_devices()[:num_devices or None]
  sharding = jax.sharding.NamedSharding(
      jax.sharding.Mesh(np.array(devices), (AXIS,)),
      jax.sharding.PartitionSpec(AXIS))
  return jax.tree.map(
      lambda x: jax.device_put(
          np.broadcast_to(np.asarray(x), (len(devices),) + np.shape(x)),
          sharding), tree)


def unreplicate(tree: Any) -> Any:
  return jax.tree.map(lambda x: np.asarray(jax.device_get(x[0])), tree)


# -------------------------------------------------------------- evaluation
def evaluate(predict, params: hk.Params, dataset: Dataset,
             budgets: Sequence[graphs_lib.PaddingBudget]) -> Dict[str, float]:
  """`metrics.score_split` of the split. Each process predicts its shard;
  rows are gathered, so every process returns the whole split's metrics."""
  predictions = []
  for graph, targets, budget in zip(dataset.graphs, dataset.targets, budgets):
    padded, _, _ = graphs_lib.pad_batch([graph], [targets], budget)
    predictions.append(
        np.asarray(predict(params, padded))[:int(graph.n_node[0])])
  return metrics_lib.score_split(predictions, dataset.targets, dataset.types,
                                 gather=distributed.allgather_rows)


# ---------------------------------------------------------------- the run
class _StopRequest:
  """Turns SIGINT/SIGTERM into a flag checked between steps."""

  def __init__(self):
    self.signal = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class TrainingDiverged(RuntimeError):
  """Non-finite losses persisted through every allowed rollback."""


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, float]:
  """Trains per `config`, writing metrics and checkpoints under `workdir`.

  Returns the final test metrics. Resumes from `workdir` when it holds a
  checkpoint. Non-finite steps are skipped; when more than
  `train.max_nonfinite_steps` of them fall in one logging interval the run
  rolls back to its last checkpoint with the learning rate scaled by
  `train.rollback_lr_factor`, at most `train.max_rollbacks` times.
  """
  started = time.time()  # For `elapsed_s` and `train.time_budget_s`.
  process, num_processes = jax.process_index(), jax.process_count()
  chief = process == 0  # Writes every file; the others only compute.
  if chief:
    os.makedirs(workdir, exist_ok=True)
  directory = data_directory(config)
  kwargs = dict(time_index=config.data.time_index, cutoff=config.data.cutoff,
                shard=(process, num_processes))
  train_set = load_dataset(directory, "train",
                           max_files=config.data.max_train_files, **kwargs)

  num_devices = jax.local_device_count()
  per_device = config.train.graphs_per_device
  local_batch = num_devices * per_device
  multiple = config.data.bucket_nodes
  buckets = size_buckets(*_global_sizes(train_set), per_device, num_devices,
                         multiple, process, num_processes)
  test_set = load_dataset(directory, "test",
                          max_files=config.data.max_test_files, **kwargs)
  steps_per_epoch = sum(b.steps for b in buckets)
  total_steps = (config.train.num_steps or
                 config.train.num_epochs * steps_per_epoch)
  test_budgets = _eval_budgets(test_set.graphs, multiple)
  scale = target_scale(train_set, config.data.standardize_targets)
  logging.info("process %d/%d: %d train / %d test graphs, %d devices, "
               "%d steps/epoch, %d steps, padding %s", process,
               num_processes, len(train_set.graphs), len(test_set.graphs),
               num_devices, steps_per_epoch, total_steps,
               [(b.budget, b.steps) for b in buckets])

  network = models.make_network(config.model)
  optimizer = make_optimizer(config, steps_per_epoch, total_steps)
  init_key, train_key = jax.random.split(
      jax.random.PRNGKey(config.train.seed))
  params = network.init(
      init_key, make_batch(train_set, [0], buckets[-1].budget, scale).graph)
  if config.init_from and chief:  # The others receive it below.
    params = checkpoints.restore(config.init_from,
                                 {"params": params})[0]["params"]
    logging.info("initialised parameters from %s", config.init_from)
  logging.info("model: %d parameters", hk.data_structures.tree_size(params))
  state = init_train_state(params, optimizer, train_key)

  manager = checkpoints.CheckpointManager(
      os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints)
  metadata = {"model_config": config.model.to_dict(),
              "time_index": config.data.time_index,
              "cutoff": config.data.cutoff,
              "target_mean": scale.mean, "target_std": scale.std,
              "config": json.loads(config.to_json())}

  def restore_latest(template: TrainState) -> Tuple[TrainState, float]:
    """Process 0 reads the checkpoint and sends it to the others."""
    best_metric = -np.inf
    if chief:
      restored, saved = checkpoints.restore(manager.latest_path(),
                                            template._asdict())
      template = TrainState(**restored)
      best_metric = saved.get("best_metric", -np.inf)
    return (TrainState(**distributed.broadcast_from_first(
        template._asdict())), best_metric)

  best = -np.inf
  resuming = chief and manager.latest_path() is not None
  if chief and not resuming:
    # Step 0 is where a divergence in the first interval rolls back to.
    manager.save(0, state._asdict(), dict(metadata, best_metric=best))
  state, best = restore_latest(state)
  if chief:
    logging.info("%s %s at step %d", "resumed from" if resuming else
                 "new run, initial state saved to", manager.latest_path(),
                 int(state.step))

  train_step = make_train_step(network, optimizer,
                               config.train.augment_rotations)
  predict = models.make_predictor(network, scale.mean, scale.std)
  step = int(state.step)
  state = replicate(state)
  rollbacks = 0
  test_metrics = {}
  pending = []  # Device scalars since the last log line (no per-step sync).
  tick, tick_step = time.time(), step
  plan, plan_epoch = [], -1
  stopping = False
  time_budget = config.train.time_budget_s
  writer = metric_writers.create_default_writer(workdir, chief)
  writer.drop_after(step)
  with _StopRequest() as stop, writer:
    while step < total_steps:
      epoch, offset = divmod(step, steps_per_epoch)
      if epoch != plan_epoch:
        plan, plan_epoch = epoch_plan(buckets, config.train.seed, epoch,
                                      local_batch), epoch
      bucket, chosen = plan[offset]
      batch = stack_batches([
          make_batch(train_set, chosen[d * per_device:(d + 1) * per_device],
                     buckets[bucket].budget, scale)
          for d in range(num_devices)])
      state, step_metrics = train_step(state, batch)
      pending.append(step_metrics)
      step += 1
      # Hosts must stop at the same step: agree at log steps (one small
      # exchange); a single process stops at once.
      if num_processes == 1 or step % config.train.log_every == 0:
        out_of_time = 0 < time_budget < time.time() - started
        stopping = distributed.any_process(stop.signal is not None or
                                           out_of_time)

      if step % config.train.log_every == 0 or step == total_steps:
        fetched = jax.device_get(pending)
        pending = []
        skipped = int(sum(not m["finite"][0] for m in fetched))
        rate = (step - tick_step) / max(time.time() - tick, 1e-9)
        tick, tick_step = time.time(), step
        _log_train(writer, step, total_steps, epoch, fetched, rate, skipped)
        if skipped > config.train.max_nonfinite_steps:
          rollbacks += 1
          if rollbacks > config.train.max_rollbacks or (
              chief and not manager.steps()):
            raise TrainingDiverged(
                f"{skipped} non-finite steps before step {step} after "
                f"{rollbacks - 1} rollbacks; lower "
                "--config.optimizer.learning_rate or check the data")
          host_state, best = restore_latest(unreplicate(state))
          host_state = host_state._replace(lr_scale=np.float32(
              host_state.lr_scale * config.train.rollback_lr_factor))
          logging.warning("rolled back to step %d with learning rate x%g",
                          int(host_state.step), host_state.lr_scale)
          step = tick_step = int(host_state.step)
          state = replicate(host_state)
          continue

      if (step % config.train.eval_every == 0 or step == total_steps or
          (stopping and stop.signal is None)):  # Out of time: evaluate.
        host_params = unreplicate(state.params)
        test_metrics = evaluate(predict, host_params, test_set, test_budgets)
        _log_test(writer, step, time.time() - started, test_metrics)
        metric = test_metrics[("pearson_a" if config.train.metric ==
                               "per_graph" else "pooled_pearson_a")]
        if metric > best:
          best = metric
          if chief:
            manager.save_best(step, {"params": host_params},
                              dict(metadata, best_metric=best))
      if chief and (step % config.train.checkpoint_every == 0 or
                    step == total_steps or stopping):
        manager.save(step, unreplicate(state)._asdict(),
                     dict(metadata, best_metric=best))
      if stopping:
        if stop.signal is None:
          logging.info("time budget of %g s reached: saved step %d, stopping",
                       time_budget, step)
        else:
          logging.warning("received signal %s: saved step %d, stopping",
                          stop.signal, step)
        break
  return test_metrics


def _log_train(writer, step, total_steps, epoch, fetched, rate, skipped):
  """Progress line (loss, steps/s, ETA) and a metrics record."""
  losses = [m["loss"][0] for m in fetched if m["finite"][0]]
  loss = float(np.mean(losses)) if losses else float("nan")
  eta = time.strftime("%H:%M:%S", time.gmtime(
      (total_steps - step) / max(rate, 1e-9)))
  logging.info("step %d/%d (epoch %d) loss %.5f  %.2f steps/s  ETA %s%s",
               step, total_steps, epoch, loss, rate, eta,
               f"  ({skipped} non-finite steps skipped)" if skipped else "")
  writer.write_scalars(step, "train", {"loss": loss, "steps_per_s": rate,
                                       "nonfinite_steps": skipped})


def _log_test(writer, step, elapsed, test_metrics):
  """`elapsed`: wall seconds since this process began training, data
  loading and compilation included (time-to-accuracy)."""
  logging.info("step %d (%.0f s) test: pearson_a %.4f +- %.4f, pooled %.4f, "
               "l1_a %.4f, l2_a %.5f, pearson_b %.4f", step, elapsed,
               test_metrics["pearson_a"], test_metrics["pearson_a_std"],
               test_metrics["pooled_pearson_a"], test_metrics["l1_a"],
               test_metrics["l2_a"], test_metrics["pearson_b"])
  writer.write_scalars(step, "test", dict(elapsed_s=elapsed, **test_metrics))


def write_report(path: str, metrics: Dict[str, float]) -> None:
  """The final test metrics as a small Markdown table."""
  rows = [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
  with atomic.atomic_write(path, "w") as f:
    f.write("| metric | value |\n|---|---|\n" + "\n".join(rows) + "\n")

