"""Training and evaluation: optax Adam, pmap data parallelism, checkpoints.

One update takes `graphs_per_device` graphs on each local device (DeepMind:
one graph, one device). Each device scores its own graphs; squared errors and
A-particle counts are summed across devices before dividing, so a pmapped
step is the step one device would take on the whole global batch.

The data order of epoch e is a permutation seeded by (seed, e), and the
augmentation key of step s is fold_in(key, s): the step counter alone says
where a run is, which makes resumption exact.
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

from glassy_jax import checkpoints
from glassy_jax import data as data_lib
from glassy_jax import graphs as graphs_lib
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
                 max_files: int = 0) -> Dataset:
  """Loads `DIR/split/aggregated*` and builds the graphs of every system."""
  files = data_lib.list_files(directory, split, max_files or None)
  snapshots = data_lib.load_snapshots(files, time_index, progress=True)
  return Dataset(
      graphs=[graphs_lib.build_graph(s, cutoff) for s in snapshots],
      targets=[s.targets for s in snapshots],
      types=[s.types for s in snapshots],
      names=[s.name for s in snapshots])


def target_scale(dataset: Dataset, standardize: bool) -> TargetScale:
  if not standardize:
    return TargetScale(0.0, 1.0)
  values = np.concatenate([t[ty == 0] for t, ty in
                           zip(dataset.targets, dataset.types)])
  return TargetScale(float(values.mean()), float(values.std()))


def make_batch(dataset: Dataset, indices: Sequence[int],
               budget: graphs_lib.PaddingBudget, scale: TargetScale) -> Batch:
  graph, targets, mask = graphs_lib.pad_batch(
      [dataset.graphs[i] for i in indices],
      [(dataset.targets[i] - scale.mean) / scale.std for i in indices], budget)
  types = graph.nodes[:, 0]
  return Batch(graph, targets, mask & (types == 0), np.int32(indices[0]))


def stack_batches(batches: Sequence[Batch]) -> Batch:
  """One batch per local device -> arrays with a leading device axis."""
  return jax.tree.map(lambda *xs: np.stack(xs), *batches)


def epoch_order(seed: int, epoch: int, num_graphs: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(num_graphs)


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
    schedule = optax.cosine_decay_schedule(opt.learning_rate, total_steps)
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
def make_predict_fn(network: hk.Transformed, scale: TargetScale):
  """Jitted forward in physical units (one device)."""

  @jax.jit
  def predict(params: hk.Params, graph: jraph.GraphsTuple) -> jax.Array:
    return network.apply(params, None, graph) * scale.std + scale.mean

  return predict


def evaluate(predict, params: hk.Params, dataset: Dataset,
             budget: graphs_lib.PaddingBudget) -> Dict[str, float]:
  """Per-graph metrics, averaged over the split (+ pooled Pearson on A)."""
  per_graph, pooled = [], []
  for graph, targets, types in zip(dataset.graphs, dataset.targets,
                                   dataset.types):
    padded, _, _ = graphs_lib.pad_batch([graph], [targets], budget)
    predictions = np.asarray(predict(params, padded))[:len(types)]
    per_graph.append(metrics_lib.graph_metrics(predictions, targets, types))
    pooled.append(predictions)
  return metrics_lib.summarize(per_graph, np.concatenate(pooled),
                               np.concatenate(dataset.targets),
                               np.concatenate(dataset.types))


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


def _append_jsonl(path: str, record: Dict[str, Any]) -> None:
  with open(path, "a") as f:
    f.write(json.dumps(record) + "\n")


def _drop_records_after(path: str, step: int) -> None:
  """On resume, forget metrics logged after the checkpoint (a killed run
  logs steps it will redo)."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = [l for l in f if l.strip()]
  kept = [l for l in lines if json.loads(l)["step"] <= step]
  if len(kept) < len(lines):
    with open(path, "w") as f:
      f.writelines(kept)


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
  os.makedirs(workdir, exist_ok=True)
  directory = data_directory(config)
  kwargs = dict(time_index=config.data.time_index, cutoff=config.data.cutoff)
  train_set = load_dataset(directory, "train",
                           max_files=config.data.max_train_files, **kwargs)
  test_set = load_dataset(directory, "test",
                          max_files=config.data.max_test_files, **kwargs)

  num_devices = jax.local_device_count()
  per_device = config.train.graphs_per_device
  global_batch = num_devices * per_device
  if len(train_set.graphs) < global_batch:
    raise data_lib.DataError(
        f"{len(train_set.graphs)} training graphs cannot fill a global batch "
        f"of {global_batch} ({num_devices} devices x {per_device})")
  steps_per_epoch = len(train_set.graphs) // global_batch
  total_steps = (config.train.num_steps or
                 config.train.num_epochs * steps_per_epoch)
  train_budget = graphs_lib.padding_budget(train_set.graphs, per_device)
  test_budget = graphs_lib.padding_budget(test_set.graphs, 1)
  scale = target_scale(train_set, config.data.standardize_targets)
  logging.info("%d train / %d test graphs, %d devices, %d steps/epoch, "
               "%d steps, padding %s", len(train_set.graphs),
               len(test_set.graphs), num_devices, steps_per_epoch,
               total_steps, train_budget)

  network = models.make_network(config.model)
  optimizer = make_optimizer(config, steps_per_epoch, total_steps)
  init_key, train_key = jax.random.split(
      jax.random.PRNGKey(config.train.seed))
  params = network.init(
      init_key, make_batch(train_set, [0], train_budget, scale).graph)
  if config.init_from:
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
    restored, saved = checkpoints.restore(manager.latest_path(),
                                          template._asdict())
    return TrainState(**restored), saved.get("best_metric", -np.inf)

  best = -np.inf
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  if manager.latest_path():
    state, best = restore_latest(state)
    _drop_records_after(metrics_path, int(state.step))
    logging.info("resumed from %s at step %d", manager.latest_path(),
                 int(state.step))
  else:  # Step 0 is where a divergence in the first interval rolls back to.
    manager.save(0, state._asdict(), dict(metadata, best_metric=best))

  train_step = make_train_step(network, optimizer,
                               config.train.augment_rotations)
  predict = make_predict_fn(network, scale)
  step = int(state.step)
  state = replicate(state)
  rollbacks = 0
  test_metrics = {}
  pending = []  # Device scalars since the last log line (no per-step sync).
  tick, tick_step = time.time(), step
  with _StopRequest() as stop:
    while step < total_steps:
      epoch, offset = divmod(step, steps_per_epoch)
      order = epoch_order(config.train.seed, epoch, len(train_set.graphs))
      chosen = order[offset * global_batch:(offset + 1) * global_batch]
      batch = stack_batches([
          make_batch(train_set, chosen[d * per_device:(d + 1) * per_device],
                     train_budget, scale) for d in range(num_devices)])
      state, step_metrics = train_step(state, batch)
      pending.append(step_metrics)
      step += 1

      if step % config.train.log_every == 0 or step == total_steps:
        fetched = jax.device_get(pending)
        pending = []
        skipped = int(sum(not m["finite"][0] for m in fetched))
        rate = (step - tick_step) / max(time.time() - tick, 1e-9)
        tick, tick_step = time.time(), step
        _log_train(metrics_path, step, total_steps, epoch, fetched, rate,
                   skipped)
        if skipped > config.train.max_nonfinite_steps:
          rollbacks += 1
          if rollbacks > config.train.max_rollbacks or not manager.steps():
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

      if step % config.train.eval_every == 0 or step == total_steps:
        host_params = unreplicate(state.params)
        test_metrics = evaluate(predict, host_params, test_set, test_budget)
        _log_test(metrics_path, step, test_metrics)
        metric = test_metrics[("pearson_a" if config.train.metric ==
                               "per_graph" else "pooled_pearson_a")]
        if metric > best:
          best = metric
          manager.save_best(step, {"params": host_params},
                            dict(metadata, best_metric=best))
      if (step % config.train.checkpoint_every == 0 or step == total_steps
          or stop.signal is not None):
        manager.save(step, unreplicate(state)._asdict(),
                     dict(metadata, best_metric=best))
      if stop.signal is not None:
        logging.warning("received signal %d: saved step %d, stopping",
                        stop.signal, step)
        break
  return test_metrics


def _log_train(path, step, total_steps, epoch, fetched, rate, skipped):
  """Progress line (loss, steps/s, ETA) and a JSONL record."""
  losses = [m["loss"][0] for m in fetched if m["finite"][0]]
  loss = float(np.mean(losses)) if losses else float("nan")
  eta = time.strftime("%H:%M:%S", time.gmtime(
      (total_steps - step) / max(rate, 1e-9)))
  logging.info("step %d/%d (epoch %d) loss %.5f  %.2f steps/s  ETA %s%s",
               step, total_steps, epoch, loss, rate, eta,
               f"  ({skipped} non-finite steps skipped)" if skipped else "")
  _append_jsonl(path, {"step": step, "split": "train", "loss": loss,
                       "steps_per_s": rate, "nonfinite_steps": skipped})


def _log_test(path, step, test_metrics):
  logging.info("step %d test: pearson_a %.4f +- %.4f, pooled %.4f, "
               "l1_a %.4f, l2_a %.5f, pearson_b %.4f", step,
               test_metrics["pearson_a"], test_metrics["pearson_a_std"],
               test_metrics["pooled_pearson_a"], test_metrics["l1_a"],
               test_metrics["l2_a"], test_metrics["pearson_b"])
  _append_jsonl(path, dict(step=step, split="test", **test_metrics))


def write_report(path: str, metrics: Dict[str, float]) -> None:
  """The final test metrics as a small Markdown table."""
  rows = [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
  with open(path, "w") as f:
    f.write("| metric | value |\n|---|---|\n" + "\n".join(rows) + "\n")

