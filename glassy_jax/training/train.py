"""The training loop: set-up, resumption, evaluation, checkpoints, logs.

`train_and_evaluate` reads as flax's example loops do: set up (the typed
config, data, model, optimiser, checkpoints), start or resume, then a loop
of named steps: the pmapped train step (`train_step.py`), logging (with
divergence rollback), evaluation that keeps the best checkpoint, and
checkpointing. The augmentation key and the data order follow from the
step number alone (`train_step`, `input_pipeline`), which makes resumption
exact.

Multi-host (`distributed.enabled`, see glassy_jax/training/distributed.py): the
global batch is P processes x local devices x graphs per device, and the
pmapped psum sums over all of them. Every process takes part in saving and
restoring checkpoints (orbax-checkpoint coordinates them, so the workdir is
storage all hosts share: a bucket or a network file system); only process 0
writes metrics, `best.npz` and the report. A checkpoint holds
params, optimiser state and step, not the layout, so a run resumes on any
number of hosts; steps per epoch, and with them the data order and
epoch-based schedules, then follow the new layout.
"""

import dataclasses
import signal
import time
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple, Union

from absl import logging
import haiku as hk
import jax
import ml_collections
import numpy as np

from glassy_jax import errors
from glassy_jax.formats import atomic
from glassy_jax.formats import storage
from glassy_jax.network import models
from glassy_jax.physics import graphs as graphs_lib
from glassy_jax.scoring import metrics as metrics_lib
from glassy_jax.scoring import ridge
from glassy_jax.training import checkpoints
from glassy_jax.training import distributed
from glassy_jax.training import input_pipeline
from glassy_jax.training import metric_writers
from glassy_jax.training import run_config
from glassy_jax.training import train_step as train_step_lib
from glassy_jax.training import workdir_lock


# -------------------------------------------------------------- evaluation
def evaluate(predict, params: hk.Params, dataset: input_pipeline.Dataset,
             budgets: List[graphs_lib.PaddingBudget],
             time_indices: Sequence[int] = ()) -> Dict[str, float]:
  """`metrics.score_split` of the split, or for a joint model's
  `time_indices` `metrics.score_time_indices`. Each process predicts its
  shard; rows are gathered, so every process returns the whole split's
  metrics."""
  predictions = []
  for graph, targets, budget in zip(dataset.graphs, dataset.targets, budgets):
    padded, _, _ = graphs_lib.pad_batch([graph], [targets], budget)
    predictions.append(
        np.asarray(predict(params, padded))[:int(graph.n_node[0])])
  if time_indices:
    return metrics_lib.score_time_indices(
        predictions, dataset.targets, dataset.types, time_indices,
        gather=distributed.allgather_rows)
  return metrics_lib.score_split(predictions, dataset.targets, dataset.types,
                                 gather=distributed.allgather_rows)


class _StopRequest:
  """Turns SIGINT/SIGTERM into a reason to stop, checked between steps."""

  def __init__(self):
    self.reason = None  # E.g. "signal 15".
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.reason = f"signal {signum}"

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class TrainingDiverged(errors.UserError, RuntimeError):
  """Non-finite losses persisted through every allowed rollback."""


# ---------------------------------------------------------------- the run
class _Run(NamedTuple):
  """What a run fixes at its start."""
  config: run_config.RunConfig
  chief: bool  # Process 0: writes metrics, best.npz, the report.
  data: input_pipeline.TrainingData
  total_steps: int
  manager: checkpoints.CheckpointManager
  metadata: checkpoints.CheckpointMetadata
  train_step: Callable  # pmapped (TrainState, Batch) -> (TrainState, scalars).
  predict: Callable  # `models.make_predictor`: (params, graph) -> targets.


def _setup(config: run_config.RunConfig, workdir: str
           ) -> Tuple[_Run, train_step_lib.TrainState]:
  """Data, network, optimiser and checkpoint manager; the initial state."""
  chief = jax.process_index() == 0
  if chief:
    try:
      storage.makedirs(workdir)
    except storage.StorageError:
      raise
    except OSError as e:
      raise atomic.write_error(workdir, e) from e
  num_devices = jax.local_device_count()
  data = input_pipeline.load_training_data(config, num_devices)
  total_steps = config.train.total_steps(data.steps_per_epoch)
  logging.info("process %d/%d: %d train / %d test graphs, %d devices, "
               "%d steps/epoch, %d steps, padding %s", jax.process_index(),
               jax.process_count(), len(data.train.graphs),
               len(data.test.graphs), num_devices, data.steps_per_epoch,
               total_steps, [(b.budget, b.steps) for b in data.buckets])

  model = config.model
  network = models.make_network(model)
  optimizer = train_step_lib.make_optimizer(
      config.optimizer, data.steps_per_epoch, total_steps)
  init_key, train_key = jax.random.split(
      jax.random.PRNGKey(config.train.seed))
  first = input_pipeline.make_batch(data.train, [0], data.buckets[-1].budget,
                                    data.scale)
  params = network.init(init_key, first.graph)
  if model.descriptor_readout:
    params = start_from_ridge(params, data)
  if config.init_from:  # Every process: all start from the same state.
    params = checkpoints.restore_params(config.init_from, params, model)
    logging.info("initialised parameters from %s", config.init_from)
  logging.info("model: %d parameters", hk.data_structures.tree_size(params))

  metadata = checkpoints.CheckpointMetadata(
      model=model, time_index=config.data.time_index,
      time_indices=config.data.time_indices,
      cutoff=data.inputs.cutoff,
      inputs={k: v for k, v in dataclasses.asdict(data.inputs).items()
              if k != "cutoff"},
      target_mean=data.scale.mean,
      target_std=data.scale.std, config=config.recorded)
  run = _Run(
      config=config, chief=chief, data=data, total_steps=total_steps,
      manager=checkpoints.CheckpointManager(
          storage.join(workdir, "checkpoints"),
          config.train.keep_checkpoints, config.train.async_checkpoints),
      metadata=metadata,
      train_step=train_step_lib.make_train_step(
          network, optimizer, config.train.augment_rotations,
          config.train.bond_target_weight),
      predict=models.make_predictor(network, data.scale.mean,
                                    data.scale.std))
  return run, train_step_lib.init_train_state(params, optimizer, train_key)


def start_from_ridge(params: hk.Params,
                     data: input_pipeline.TrainingData) -> hk.Params:
  """The descriptor readout set to the ridge fit of the (standardised)
  training targets on the (standardised) descriptors, and the decoder's
  last layer to zero: the network starts as the ridge model."""
  params = jax.tree.map(np.asarray, params)
  readout = params["bapst/~/descriptor_readout"]
  descriptors = [g.nodes[:, 1:] for g in data.train.graphs]
  targets = [(np.asarray(t, np.float64) - data.scale.mean) / data.scale.std
             for t in data.train.targets]
  columns = targets[0].shape[1] if targets[0].ndim == 2 else 0
  weights, biases = [], []
  for k in range(max(columns, 1)):
    fit = ridge.fit_held_out_ridge(
        descriptors, [t[:, k] if columns else t for t in targets],
        data.train.types)
    weights.append(fit.weights / fit.scale)
    biases.append(fit.intercept - fit.mean / fit.scale @ fit.weights)
  readout["w"] = np.stack(weights, axis=1).astype(np.float32)
  readout["b"] = np.asarray(biases, np.float32)
  last = sorted(k for k in params if k.startswith("bapst/~/decoder/"))[-1]
  params[last] = {k: np.zeros_like(v) for k, v in params[last].items()}
  logging.info("descriptor readout starts at the ridge fit (penalty %g)",
               fit.penalty)
  return params


def _restore_latest(run: _Run, template: train_step_lib.TrainState
                    ) -> Tuple[train_step_lib.TrainState, float]:
  """The newest readable checkpoint and its best metric (every process
  reads it)."""
  restored, saved, _ = run.manager.restore_latest(template._asdict())
  return train_step_lib.TrainState(**restored), saved.best_metric


def _start_or_resume(run: _Run, state: train_step_lib.TrainState
                     ) -> Tuple[train_step_lib.TrainState, float]:
  """Resumes from the workdir's last checkpoint; a new run first saves step
  0, where a divergence in the first interval rolls back to."""
  resuming = run.manager.latest_path() is not None
  if not resuming:
    run.manager.refuse_npz_steps()
    run.manager.save(0, state._asdict(), run.metadata)
  state, best = _restore_latest(run, state)
  if run.chief:
    logging.info("%s %s at step %d", "resumed from" if resuming else
                 "new run, initial state saved to",
                 run.manager.latest_path(), int(state.step))
  return state, best


def _rollback(run: _Run, state: Any, rollbacks: int, skipped: int,
              step: int) -> Tuple[train_step_lib.TrainState, float]:
  """Too many non-finite steps: the last checkpoint, with the learning rate
  scaled by `train.rollback_lr_factor` (host state)."""
  train = run.config.train
  if rollbacks > train.max_rollbacks or not run.manager.steps():
    raise TrainingDiverged(
        f"{skipped} non-finite steps before step {step} after "
        f"{rollbacks - 1} rollbacks; lower "
        "--config.optimizer.learning_rate or check the data")
  state, best = _restore_latest(run, distributed.unreplicate(state))
  state = state._replace(lr_scale=np.float32(
      state.lr_scale * train.rollback_lr_factor))
  logging.warning("rolled back to step %d with learning rate x%g",
                  int(state.step), state.lr_scale)
  return state, best


def _evaluate_and_keep_best(run: _Run, state: Any, step: int, best: float,
                            writer, elapsed: float
                            ) -> Tuple[Dict[str, float], float]:
  """Test metrics; the parameters go to best.npz when they beat `best`
  (for a joint model, the mean over its time indices of `train.metric`)."""
  params = distributed.unreplicate(state.params)
  test_metrics = evaluate(run.predict, params, run.data.test,
                          run.data.test_budgets,
                          run.config.data.time_indices)
  _log_test(writer, step, elapsed, test_metrics,
            "test" if run.data.final_test is None else "validation")
  metric = test_metrics[run.config.train.metric_key]
  # Without selection (train.select_best False), best.npz is the latest
  # evaluated state: the test split is watched, never chosen on.
  if metric > best or not run.config.train.select_best:
    best = metric
    if run.chief:
      run.manager.save_best(
          step, {"params": params},
          dataclasses.replace(run.metadata, best_metric=best))
  return test_metrics, best


class _Interval:
  """Device scalars and wall time since the last log line: fetched once
  per interval, so steps never wait for the host."""

  def __init__(self, step: int):
    self.restart(step)

  def restart(self, step: int) -> None:
    self.pending, self.start, self.start_step = [], time.time(), step

  def close(self, step: int) -> Tuple[List[Dict[str, np.ndarray]], float]:
    """The interval's scalars and steps per second; starts the next."""
    fetched = jax.device_get(self.pending)
    rate = (step - self.start_step) / max(time.time() - self.start, 1e-9)
    self.restart(step)
    return fetched, rate


def train_and_evaluate(config: Union[ml_collections.ConfigDict,
                                    run_config.RunConfig],
                       workdir: str) -> Dict[str, float]:
  """Trains per `config`, writing metrics and checkpoints under `workdir`.

  Returns the final test metrics. Every config value is checked first
  (`run_config.RunConfig.of`: `errors.ConfigError` names each bad one).
  Resumes from `workdir` when it holds a checkpoint. Non-finite steps are
  skipped; when more than `train.max_nonfinite_steps` of them fall in one
  logging interval the run rolls back to its last checkpoint with the
  learning rate scaled by `train.rollback_lr_factor`, at most
  `train.max_rollbacks` times.
  """
  config = run_config.RunConfig.of(config)  # Before any work.
  checkpoints.check_run_directory(storage.join(workdir, "checkpoints"))
  # One trainer per workdir; only process 0 writes, so only it locks.
  with workdir_lock.hold(workdir, enabled=jax.process_index() == 0):
    return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: run_config.RunConfig,
                        workdir: str) -> Dict[str, float]:
  started = time.time()  # For `elapsed_s` and `train.time_budget_s`.
  run, state = _setup(config, workdir)
  with run.manager:  # Closing it waits for the last background save.
    return _train_loop(run, state, workdir, started)


def _train_loop(run: _Run, state: train_step_lib.TrainState, workdir: str,
                started: float) -> Dict[str, float]:
  config = run.config
  train = config.train
  state, best = _start_or_resume(run, state)
  batches = input_pipeline.TrainBatches(run.data, train.seed,
                                        train.graphs_per_device,
                                        jax.local_device_count())
  step = int(state.step)
  state = distributed.replicate(state)
  rollbacks, test_metrics, interval = 0, {}, _Interval(step)
  writer = metric_writers.create_default_writer(workdir, run.chief)
  writer.drop_after(step)
  with _StopRequest() as stop, writer:
    while step < run.total_steps:
      state, step_metrics = run.train_step(state, batches(step))
      interval.pending.append(step_metrics)
      step += 1
      last = step == run.total_steps
      stopping = _should_stop(step, run, stop, started)
      if step % train.log_every == 0 or last:
        skipped = _log_train(writer, run, step, *interval.close(step))
        if skipped > train.max_nonfinite_steps:
          rollbacks += 1
          host_state, best = _rollback(run, state, rollbacks, skipped, step)
          step = int(host_state.step)
          state = distributed.replicate(host_state)
          interval.restart(step)
          continue
      if (step % train.eval_every == 0 or last or
          (stopping and stop.reason is None)):  # Out of time: evaluate.
        test_metrics, best = _evaluate_and_keep_best(
            run, state, step, best, writer, time.time() - started)
      if step % train.checkpoint_every == 0 or last or stopping:
        run.manager.save(step, distributed.unreplicate(state)._asdict(),
                         dataclasses.replace(run.metadata, best_metric=best))
      if stopping:
        _log_stop(stop, train.time_budget_s, step)
        break
    scored = f"step {step}"
    if run.data.final_test is not None:
      test_metrics, best_step = _score_best_on_test(
          run, distributed.unreplicate(state).params)
      writer.write_scalars(step, "test", dict(
          elapsed_s=time.time() - started, **test_metrics))
      scored = (f"the checkpoint of step {best_step} (the best on the "
                f"validation split; training ran to step {step})")
  if run.chief:
    write_report(storage.join(workdir, "report.md"), test_metrics, config,
                 scored)
  return test_metrics


def _score_best_on_test(run: _Run, template: hk.Params
                        ) -> Tuple[Dict[str, float], int]:
  """With a validation split: the best checkpoint's (chosen on it) metrics
  on the test split, measured once, and its step."""
  restored, saved = checkpoints.restore(run.manager.best_path,
                                        {"params": template})
  final_test = run.data.final_test
  metrics = evaluate(run.predict, restored["params"], final_test,
                     input_pipeline.eval_budgets(
                         final_test.graphs, run.config.data.bucket_nodes),
                     run.config.data.time_indices)
  logging.info("best checkpoint (step %d, validation %.4f) on the test "
               "split: pearson_a %.4f +- %.4f", saved.step, saved.best_metric,
               metrics["pearson_a"], metrics["pearson_a_std"])
  return metrics, saved.step


def _should_stop(step: int, run: _Run, stop: "_StopRequest",
                 started: float) -> bool:
  """A signal (SIGTERM is the clusters' preemption notice) or the time
  budget. Hosts must stop at the same step, for the same reason: they agree
  at log steps (one small exchange); a single process stops at once.

  Not JAX's preemption sync point (orbax's `reached_preemption`): it hears
  SIGTERM through JAX's own handler, which `_StopRequest` replaces.
  """
  train = run.config.train
  if jax.process_count() > 1 and step % train.log_every:
    return False
  signalled, out_of_time = distributed.any_process(
      stop.reason is not None,
      0 < train.time_budget_s < time.time() - started)
  if signalled and stop.reason is None:  # Every host acts on the same why.
    stop.reason = "a signal on another host"
  return signalled or out_of_time


def _log_stop(stop: "_StopRequest", time_budget: float, step: int) -> None:
  if stop.reason is None:
    logging.info("time budget of %g s reached: saved step %d, stopping",
                 time_budget, step)
  else:
    logging.warning("received %s: saved step %d, stopping", stop.reason,
                    step)


def _log_train(writer, run: _Run, step: int,
               fetched: List[Dict[str, np.ndarray]], rate: float) -> int:
  """Progress line (loss, steps/s, ETA) and a metrics record; returns the
  number of non-finite (skipped) steps of the interval."""
  total_steps = run.total_steps
  epoch = (step - 1) // run.data.steps_per_epoch
  skipped = int(sum(not m["finite"][0] for m in fetched))
  finite = [m for m in fetched if m["finite"][0]]
  # The loss, and its terms when it has several (bond targets).
  terms = {key: float(np.mean([m[key][0] for m in finite])) if finite
           else float("nan") for key in fetched[0]
           if key.endswith("loss")}
  eta = time.strftime("%H:%M:%S", time.gmtime(
      (total_steps - step) / max(rate, 1e-9)))
  parts = "".join(f" {key} {value:.5f}" for key, value in terms.items()
                  if key != "loss")
  logging.info("step %d/%d (epoch %d) loss %.5f%s  %.2f steps/s  ETA %s%s",
               step, total_steps, epoch, terms["loss"], parts, rate, eta,
               f"  ({skipped} non-finite steps skipped)" if skipped else "")
  writer.write_scalars(step, "train", {**terms, "steps_per_s": rate,
                                       "nonfinite_steps": skipped})
  return skipped


def _log_test(writer, step, elapsed, test_metrics, split="test"):
  """`elapsed`: wall seconds since this process began training, data
  loading and compilation included (time-to-accuracy). `split`: "test", or
  "validation" for held-out training files."""
  logging.info("step %d (%.0f s) %s: pearson_a %.4f +- %.4f, pooled %.4f, "
               "l1_a %.4f, l2_a %.5f, pearson_b %.4f", step, elapsed, split,
               test_metrics["pearson_a"], test_metrics["pearson_a_std"],
               test_metrics["pooled_pearson_a"], test_metrics["l1_a"],
               test_metrics["l2_a"], test_metrics["pearson_b"])
  per_index = [f"{key[len('pearson_a/'):]} {value:.4f}"
               for key, value in test_metrics.items()
               if key.startswith("pearson_a/")]
  if per_index:  # A joint model: the line above holds their means.
    logging.info("step %d %s pearson_a per time index: %s", step, split,
                 ", ".join(per_index))
  writer.write_scalars(step, split, dict(elapsed_s=elapsed, **test_metrics))


def write_report(path: str, metrics: Dict[str, float],
                 config: run_config.RunConfig, scored: str) -> None:
  """The final test metrics as a small Markdown table, under a line that
  says what they measure: which network (`scored`), which targets, which
  data."""
  data = config.data
  targets = (f"time indices {', '.join(map(str, data.time_indices))}"
             if data.time_indices else f"time index {data.time_index}")
  source = data.directory or "the bundled demo data"
  rows = [f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]
  with atomic.atomic_write(path, "w") as f:
    f.write(f"Test metrics of {scored}, {targets}, on {source}.\n\n"
            "| metric | value |\n|---|---|\n" + "\n".join(rows) + "\n")

