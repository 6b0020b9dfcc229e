"""The training step: augmentation, pmap equivalence, the loss, the
optimiser's schedule."""

import jax
import numpy as np
import pytest

from glassy_jax.configs import bapst
from glassy_jax.configs import fast_all_times
from glassy_jax.network import model_inputs
from glassy_jax.network import models
from glassy_jax.physics import graphs as graphs_lib
from glassy_jax.training import distributed
from glassy_jax.training import input_pipeline
from glassy_jax.training import run_config
from glassy_jax.training import train_step


def _optimizer(config):
  return run_config.OptimizerConfig.of(config.optimizer)


def test_augmentation_is_a_signed_axis_permutation():
  edges = np.random.default_rng(2).normal(size=(100, 3)).astype(np.float32)
  seen = set()
  for seed in range(40):
    out = np.asarray(train_step.augment_edges(jax.random.PRNGKey(seed), edges))
    # out = edges @ M for one signed permutation matrix M shared by all edges.
    m = np.linalg.lstsq(edges, out, rcond=None)[0]
    np.testing.assert_allclose(out, edges @ np.round(m), atol=1e-6)
    assert sorted(np.abs(np.round(m)).sum(0)) == [1, 1, 1]
    seen.add(tuple(np.round(m).ravel()))
  assert len(seen) > 20  # 48 signed permutations exist; most are drawn.


def _graph_batch(dataset, indices, budget):
  return input_pipeline.make_batch(dataset, indices, budget,
                                   input_pipeline.TargetScale(0, 1))


@pytest.fixture(scope="module")
def small_train_set(synthetic_dataset):
  return input_pipeline.load_dataset(synthetic_dataset, "train", time_index=3,
                                     inputs=model_inputs.InputSpec())


def test_pmap_step_equals_single_device_step(small_train_set):
  assert jax.local_device_count() == 2, "conftest forces 2 CPU devices"
  config = bapst.get_config()
  network = models.make_network(config.model)
  optimizer = train_step.make_optimizer(_optimizer(config), 2, 10)
  step = train_step.make_train_step(network, optimizer, augment=False)
  one = graphs_lib.padding_budget(small_train_set.graphs, 1)
  two = graphs_lib.padding_budget(small_train_set.graphs, 2)
  params = network.init(jax.random.PRNGKey(0),
                        _graph_batch(small_train_set, [0], one).graph)
  state = train_step.init_train_state(params, optimizer, jax.random.PRNGKey(1))
  two_devices = input_pipeline.stack_batches(
      [_graph_batch(small_train_set, [i], one) for i in (0, 1)])
  one_device = input_pipeline.stack_batches(
      [_graph_batch(small_train_set, [0, 1], two)])
  state_2, metrics_2 = step(distributed.replicate(state, 2), two_devices)
  state_1, metrics_1 = step(distributed.replicate(state, 1), one_device)
  np.testing.assert_allclose(metrics_2["loss"][0], metrics_1["loss"][0],
                             rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
               distributed.unreplicate(state_2.params),
               distributed.unreplicate(state_1.params))
  # Both replicas hold the same parameters after the update.
  jax.tree.map(lambda x: np.testing.assert_array_equal(x[0], x[1]),
               jax.device_get(state_2.params))
  # And the update did something.
  changed = jax.tree.map(lambda a, b: np.abs(a - b).max(), params,
                         distributed.unreplicate(state_1.params))
  assert max(jax.tree.leaves(changed)) > 1e-6


def test_joint_loss_is_the_mean_over_time_indices_of_masked_mses(
    synthetic_dataset):
  """Per time index: squared errors over the real A particles of both
  devices, divided by their count; then the mean over indices. Padding
  nodes and B particles count in no column, whatever their targets."""
  dataset = input_pipeline.load_dataset(synthetic_dataset, "train",
                                        time_index=(0, 4, 9),
                                        inputs=model_inputs.InputSpec(),
                                        max_files=2)
  config = fast_all_times.get_config("test")
  config.model.update(num_steps=1, mlp_sizes=(16, 16), decoder_sizes=(16, 3))
  network = models.make_network(config.model)
  optimizer = train_step.make_optimizer(_optimizer(config), 2, 10)
  budget = graphs_lib.padding_budget(dataset.graphs, 1)
  batches = [_graph_batch(dataset, [i], budget) for i in (0, 1)]
  params = network.init(jax.random.PRNGKey(0), batches[0].graph)
  squared_errors, count, noisy = np.zeros(3), 0, []
  for batch in batches:
    graph = batch.graph
    real_a = ((np.arange(len(graph.nodes)) < graph.n_node[0])
              & (graph.nodes[:, 0] == 0))
    assert (~real_a).sum() > 1  # B particles and padding.
    errors = np.asarray(network.apply(params, None, graph)) - batch.targets
    squared_errors += (errors[real_a] ** 2).sum(axis=0)
    count += real_a.sum()
    noisy.append(batch._replace(targets=np.where(
        real_a[:, None], batch.targets, np.float32(1e3))))
  step = train_step.make_train_step(network, optimizer, augment=False)
  _, step_metrics = step(
      distributed.replicate(train_step.init_train_state(
          params, optimizer, jax.random.PRNGKey(1)), 2),
      input_pipeline.stack_batches(noisy))
  np.testing.assert_allclose(step_metrics["loss"][0],
                             np.mean(squared_errors / count), rtol=1e-5)


def test_cosine_schedule_warms_up_linearly():
  """With a constant gradient Adam's step is the learning rate itself."""
  optimizer = train_step.make_optimizer(
      run_config.OptimizerConfig(schedule="cosine", warmup_steps=10,
                                 clip_global_norm=0.0, learning_rate=1e-3),
      steps_per_epoch=5, total_steps=50)
  params = {"w": np.zeros(1, np.float32)}
  state = optimizer.init(params)
  steps = []
  for _ in range(50):
    updates, state = optimizer.update({"w": np.ones(1, np.float32)}, state)
    steps.append(-float(updates["w"][0]))
  np.testing.assert_allclose(steps[:11], np.linspace(0, 1e-3, 11),
                             atol=1e-8)
  assert steps[30] < steps[10] and steps[-1] < 1e-4
