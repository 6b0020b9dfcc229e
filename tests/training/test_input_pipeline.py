"""Size buckets, epoch plans and batches: every graph once, the same plan on
every process, and the batch of a step from the step alone; a joint model's
time indices and per-index target scale."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glassy_jax.configs import bapst
from glassy_jax.formats import data as data_lib
from glassy_jax.network import model_config
from glassy_jax.network import models
from glassy_jax.training import checkpoints
from glassy_jax.training import input_pipeline
from glassy_jax.training import run_config


def _global_plan(n_node, num_processes, epoch, per_device=1, num_devices=2):
  """Every process's plan of `epoch`, with file (global) indices."""
  n_edge = 40 * np.asarray(n_node)
  plans = []
  for process in range(num_processes):
    buckets = input_pipeline.size_buckets(n_node, n_edge, per_device,
                                          num_devices, 256, process,
                                          num_processes)
    plan = input_pipeline.epoch_plan(buckets, 42, epoch,
                                     per_device * num_devices)
    plans.append([(b, process + num_processes * local) for b, local in plan])
  return buckets, plans


@pytest.mark.parametrize("num_processes", [1, 2])
def test_mixed_sizes_get_a_budget_each_and_every_graph_once(num_processes):
  n_node = np.array([100, 100, 300, 300] * 4)  # Both sizes on each process.
  buckets, plans = _global_plan(n_node, num_processes, epoch=3)
  assert [b.budget.n_node for b in buckets] == [101, 301]
  assert [b.steps for b in buckets] == [4 // num_processes] * 2
  turns = [[bucket for bucket, _ in plan] for plan in plans]
  assert all(t == turns[0] for t in turns)  # Processes agree on the shape.
  assert sorted(set(turns[0])) == [0, 1]
  seen = []
  for steps in zip(*plans):
    files = np.concatenate([files for _, files in steps])
    assert len(set(n_node[files])) == 1  # One bucket per step.
    seen.extend(files)
  assert sorted(seen) == list(range(len(n_node)))


def test_small_bucket_merges_into_the_next_larger():
  # One graph of 50 nodes cannot fill a batch of 2: it joins the 100s.
  buckets = input_pipeline.size_buckets([50, 100, 100, 300, 300], [10] * 5,
                                        1, 2, 64)
  assert [list(b.members) for b in buckets] == [[0, 1, 2], [3, 4]]
  assert [b.budget.n_node for b in buckets] == [101, 301]
  # And the largest merges down when it cannot fill a batch.
  buckets = input_pipeline.size_buckets([100, 100, 300], [10] * 3, 1, 2, 64)
  assert len(buckets) == 1 and buckets[0].budget.n_node == 301
  with pytest.raises(data_lib.DataError, match="cannot fill a global batch"):
    input_pipeline.size_buckets([100, 100, 300], [10] * 3, 1, 2, 64, 0, 2)


def test_one_bucket_keeps_the_single_host_order():
  n = 10
  buckets = input_pipeline.size_buckets([216] * n, np.arange(n) + 3000, 2,
                                        2, 256)
  assert len(buckets) == 1 and buckets[0].steps == 2
  for epoch in range(3):
    order = np.random.default_rng([42, epoch]).permutation(n)
    plan = input_pipeline.epoch_plan(buckets, 42, epoch, 4)
    np.testing.assert_array_equal(
        np.concatenate([files for _, files in plan]), order[:8])


def test_batch_of_a_step_depends_on_the_step_alone(synthetic_dataset):
  """What makes resumption exact: a fresh pipeline asked for step s gives
  the batch a long-running one gave, whatever it was asked before."""
  config = bapst.get_config("test")
  config.data.directory = synthetic_dataset
  config.data.time_index = 3
  config.data.max_train_files = 0  # All 4: two steps per epoch.
  data = input_pipeline.load_training_data(run_config.RunConfig.of(config),
                                          num_devices=2)
  assert data.steps_per_epoch == len(data.train.graphs) // 2
  steps = range(3 * data.steps_per_epoch)
  running = input_pipeline.TrainBatches(data, 42, 1, 2)
  seen = [running(step) for step in steps]
  for step in (data.steps_per_epoch + 1, 0, 2 * data.steps_per_epoch + 1):
    fresh = input_pipeline.TrainBatches(data, 42, 1, 2)(step)
    jax.tree.map(np.testing.assert_array_equal, fresh, seen[step])
  assert seen[0].graph.nodes.shape[0] == 2  # [devices, ...].
  # Each epoch draws every training graph once, in a new order.
  per_epoch = data.steps_per_epoch
  epochs = [[int(g) for batch in seen[e * per_epoch:(e + 1) * per_epoch]
             for g in batch.first_graph] for e in range(3)]
  assert all(sorted(e) == list(range(len(data.train.graphs))) for e in epochs)
  assert len(set(map(tuple, epochs))) > 1


@pytest.mark.parametrize("indices, outputs, message", [
    ((0, 12), 2, r"data.time_indices must be empty or 2 or more distinct "
     r"indices in 0..9 \(one: data.time_index\), got \(0, 12\)"),
    ((4, 4), 2, "or 2 or more distinct indices"),
    ((4,), 1, "or 2 or more distinct indices"),
    ((0, 9), 1, r"model.decoder_sizes\[-1\] must equal "
     r"len\(data.time_indices\) .* got 1 outputs"),
    ((), 3, r"model.decoder_sizes\[-1\] must equal"),
])
def test_time_indices_must_fit_the_decoder(indices, outputs, message):
  config = bapst.get_config("test")
  config.data.time_indices = indices
  config.model.decoder_sizes = (64, 64, outputs)
  with pytest.raises(ValueError, match=message):
    run_config.RunConfig.of(config)


def test_joint_targets_are_standardised_per_time_index(synthetic_dataset,
                                                       tmp_path):
  """Each time index has its own mean and standard deviation (over A
  targets), the checkpoint keeps them, and the predictor built from it
  brings standardised outputs back to each index's units."""
  config = bapst.get_config("test")
  config.data.update(directory=synthetic_dataset, time_indices=(0, 9),
                     standardize_targets=True)
  config.model.decoder_sizes = (64, 2)
  typed = run_config.RunConfig.of(config)
  assert typed.data.targets == (0, 9)
  data = input_pipeline.load_training_data(typed, num_devices=2)
  a_targets = np.concatenate([t[ty == 0] for t, ty in zip(data.train.targets,
                                                          data.train.types)])
  np.testing.assert_allclose(data.scale.mean, a_targets.mean(axis=0))
  np.testing.assert_allclose(data.scale.std, a_targets.std(axis=0))
  assert data.scale.mean[1] > 2 * data.scale.mean[0]  # Later: further.
  batch = input_pipeline.make_batch(data.train, [0], data.buckets[0].budget,
                                    data.scale)
  real = len(data.train.targets[0])
  np.testing.assert_allclose(
      batch.targets[:real], (data.train.targets[0] - data.scale.mean)
      / data.scale.std, rtol=1e-6)

  path = str(tmp_path / "joint.npz")
  checkpoints.save(path, {}, checkpoints.CheckpointMetadata(
      model=model_config.ModelConfig.of(config.model), time_indices=(0, 9),
      target_mean=data.scale.mean, target_std=data.scale.std))
  _, metadata = checkpoints.load(path)
  # A network whose outputs are the standardised targets.
  network = hk.transform(lambda graph: jnp.asarray(batch.targets))
  predict = models.make_predictor(network, metadata.target_mean,
                                  metadata.target_std)
  np.testing.assert_allclose(np.asarray(predict({}, batch.graph))[:real],
                             data.train.targets[0], rtol=1e-5)
