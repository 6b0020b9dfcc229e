"""BOTAN's bond target: the values, their reading, the edge head and the
masked loss term."""

import jax
import numpy as np
import pytest

from glassy_jax import errors
from glassy_jax.configs import fast
from glassy_jax.configs import long_time
from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.network import model_inputs
from glassy_jax.network import models
from glassy_jax.physics import bond_targets
from glassy_jax.physics import graphs as graphs_lib
from glassy_jax.training import distributed
from glassy_jax.training import input_pipeline
from glassy_jax.training import run_config
from glassy_jax.training import train_step
from formats import test_layouts  # tests/formats: the layouts' writers


def _snapshot(seed, n=30, runs=3, box=6.0):
  rng = np.random.default_rng(seed)
  return data.Snapshot(
      positions=rng.uniform(0, box, (n, 3)), types=np.zeros(n, np.int32),
      box=np.full(3, box), targets=None, name="random",
      displacements=rng.normal(0, 0.4, (runs, n, 3)).astype(np.float32))


def test_bond_change_against_explicit_images():
  """Independent of the minimum-image formula: each pair's nearest image is
  found by trying all 27 images, and its distance followed explicitly."""
  snapshot = _snapshot(0)
  senders, receivers = graphs_lib.neighbour_pairs(snapshot.positions,
                                                  snapshot.box)
  values = bond_targets.bond_change(snapshot, senders, receivers)
  shifts = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1)
                     for c in (-1, 0, 1)]) * snapshot.box
  for e in range(0, len(senders), 7):
    i, j = senders[e], receivers[e]
    images = snapshot.positions[j] + shifts
    image = images[np.argmin(np.linalg.norm(images - snapshot.positions[i],
                                            axis=1))]
    before = np.linalg.norm(image - snapshot.positions[i])
    after = np.mean([np.linalg.norm(image + u[j] - snapshot.positions[i] - u[i])
                     for u in snapshot.displacements])
    expected = 0.0 if i == j else after - before
    np.testing.assert_allclose(values[e], expected, atol=1e-5)
  assert np.all(values[senders == receivers] == 0)
  assert np.abs(values).max() > 0.05


def test_bond_change_is_invariant_under_rotation_translation_and_order():
  snapshot = _snapshot(1)
  senders, receivers = graphs_lib.neighbour_pairs(snapshot.positions,
                                                  snapshot.box)
  values = bond_targets.bond_change(snapshot, senders, receivers)
  # A cubic-box symmetry (axis permutation with a reflection) and a shift
  # by an arbitrary vector, positions wrapped back into the box.
  turn = np.array([[0, 1, 0], [0, 0, -1], [1, 0, 0]], np.float64)
  moved = snapshot._replace(
      positions=np.mod(snapshot.positions @ turn.T + [1.3, -4.1, 2.2],
                       snapshot.box),
      displacements=(snapshot.displacements @ turn.T).astype(np.float32))
  np.testing.assert_allclose(
      bond_targets.bond_change(moved, senders, receivers), values, atol=1e-5)
  # Particles relabelled: the same pairs give the same values.
  order = np.random.default_rng(2).permutation(len(snapshot.types))
  inverse = np.argsort(order)
  relabelled = snapshot._replace(
      positions=snapshot.positions[order],
      displacements=snapshot.displacements[:, order])
  np.testing.assert_allclose(
      bond_targets.bond_change(relabelled, inverse[senders],
                               inverse[receivers]), values, atol=1e-6)
  # Symmetric: (i, j) and (j, i) moved apart by the same amount.
  reverse = {(s, r): v for s, r, v in zip(senders, receivers, values)}
  for s, r, v in zip(senders[:50], receivers[:50], values[:50]):
    np.testing.assert_allclose(reverse[(r, s)], v, atol=1e-6)


def test_shiba_files_and_deepmind_trajectories_give_the_runs(tmp_path,
                                                             synthetic_dataset):
  arrays = test_layouts.write_shiba(str(tmp_path), "train", 3, 7, runs=5)
  pattern = layouts.list_files(str(tmp_path), "train")[0]
  snapshot = layouts.load_snapshot(pattern, 7, with_runs=True)
  np.testing.assert_allclose(
      snapshot.displacements,
      arrays["positions"] - arrays["initial_positions"][None], atol=1e-6)
  # Their norms average to the propensity the reader gives.
  np.testing.assert_allclose(
      np.linalg.norm(snapshot.displacements, axis=-1).mean(axis=0),
      snapshot.targets, rtol=1e-5)
  deepmind = layouts.list_files(synthetic_dataset, "train")[0]
  snapshot = layouts.load_snapshot(deepmind, 4, with_runs=True)
  assert snapshot.displacements.shape == (2,) + snapshot.positions.shape
  np.testing.assert_allclose(
      np.linalg.norm(snapshot.displacements, axis=-1).mean(axis=0),
      snapshot.targets, rtol=1e-5)
  assert layouts.load_snapshot(deepmind, 4).displacements is None


def test_files_with_propensities_only_say_so(tmp_path):
  test_layouts.write_glassbench(str(tmp_path), "train", 1)
  path = layouts.list_files(str(tmp_path), "train")[0]
  with pytest.raises(data.DataError, match="propensities only"):
    layouts.load_snapshot(path, 2, with_runs=True)


def test_padding_and_self_pairs_carry_no_bond_target(synthetic_dataset):
  dataset = input_pipeline.load_dataset(
      synthetic_dataset, "train", time_index=5,
      inputs=model_inputs.InputSpec(), max_files=2, with_bond_targets=True)
  budget = graphs_lib.padding_budget(dataset.graphs, 2)
  batch = input_pipeline.make_batch(dataset, [0, 1], budget,
                                    input_pipeline.TargetScale(0, 1))
  real = sum(int(g.n_edge[0]) for g in dataset.graphs)
  assert len(batch.edge_targets) == budget.n_edge > real
  self_pairs = sum(int(g.n_node[0]) for g in dataset.graphs)
  assert batch.edge_mask.sum() == real - self_pairs
  assert not batch.edge_mask[real:].any()
  np.testing.assert_array_equal(
      batch.edge_targets[:real], np.concatenate(dataset.edge_targets))


def _bond_config():
  config = fast.get_config("test")
  config.model.update(num_steps=1, mlp_sizes=(16, 16), decoder_sizes=(16, 1),
                      bond_head=True)
  config.train.bond_target_weight = 0.5
  return config


def test_edge_head_is_symmetric_and_leaves_the_predictions_alone(
    synthetic_dataset):
  config = _bond_config()
  dataset = input_pipeline.load_dataset(
      synthetic_dataset, "train", time_index=5,
      inputs=model_inputs.InputSpec(), max_files=1)
  graph = dataset.graphs[0]
  network = models.make_network(config.model)
  params = network.init(jax.random.PRNGKey(0), graph)
  assert any("bond_decoder" in module for module in params)
  nodes, bonds = network.apply(params, None, graph, bonds=True)
  assert bonds.shape == (int(graph.n_edge[0]),)
  np.testing.assert_array_equal(nodes, network.apply(params, None, graph))
  index = {(s, r): e for e, (s, r) in enumerate(zip(graph.senders,
                                                     graph.receivers))}
  reverse = np.array([index[(r, s)] for s, r in zip(graph.senders,
                                                     graph.receivers)])
  np.testing.assert_allclose(bonds, np.asarray(bonds)[reverse], atol=1e-6)
  # Without the head, the same parameters minus the head.
  config.model.bond_head = False
  plain = models.make_network(config.model).init(jax.random.PRNGKey(0), graph)
  assert set(params) - set(plain) == {m for m in params if "bond_decoder" in m}


def test_bond_loss_is_the_masked_mean_over_real_pairs(synthetic_dataset):
  """loss = propensity MSE + weight x bond MSE over real pairs of both
  devices; padding and self-pair targets change nothing."""
  config = _bond_config()
  dataset = input_pipeline.load_dataset(
      synthetic_dataset, "train", time_index=5,
      inputs=model_inputs.InputSpec(), max_files=2, with_bond_targets=True)
  network = models.make_network(config.model)
  optimizer = train_step.make_optimizer(
      run_config.OptimizerConfig.of(config.optimizer), 2, 10)
  budget = graphs_lib.padding_budget(dataset.graphs, 1)
  batches = [input_pipeline.make_batch(dataset, [i], budget,
                                       input_pipeline.TargetScale(0, 1))
             for i in (0, 1)]
  params = network.init(jax.random.PRNGKey(0), batches[0].graph)
  bond_sse, pairs = 0.0, 0
  for batch in batches:
    _, bonds = network.apply(params, None, batch.graph, bonds=True)
    errors_ = (np.asarray(bonds) - batch.edge_targets)[batch.edge_mask]
    bond_sse += (errors_ ** 2).sum()
    pairs += len(errors_)
  noisy = [b._replace(edge_targets=np.where(b.edge_mask, b.edge_targets,
                                            np.float32(1e3)))
           for b in batches]
  state = distributed.replicate(train_step.init_train_state(
      params, optimizer, jax.random.PRNGKey(1)), 2)
  step = train_step.make_train_step(network, optimizer, augment=False,
                                    bond_weight=0.5)
  _, metrics = step(state, input_pipeline.stack_batches(noisy))
  np.testing.assert_allclose(metrics["bond_loss"][0], bond_sse / pairs,
                             rtol=1e-5)
  np.testing.assert_allclose(
      metrics["loss"][0],
      metrics["propensity_loss"][0] + 0.5 * metrics["bond_loss"][0],
      rtol=1e-6)


def test_training_standardises_bond_targets_over_the_training_pairs(
    synthetic_dataset, tmp_path):
  config = _bond_config()
  config.data.directory = synthetic_dataset
  config.data.time_index = 5
  typed = run_config.RunConfig.of(config)
  training = input_pipeline.load_training_data(typed, 1)
  pairs = np.concatenate([t[bond_targets.pair_mask(g.senders, g.receivers)]
                          for t, g in zip(training.train.edge_targets,
                                          training.train.graphs)])
  np.testing.assert_allclose([pairs.mean(), pairs.std()], [0, 1], atol=1e-4)
  assert training.test.edge_targets is None  # Scored on propensities only.


@pytest.mark.parametrize("change, message", [
    (dict(bond_target_weight=1.0), "go together"),
    (dict(bond_head=True), "go together"),
    (dict(bond_target_weight=-1.0), "bond_target_weight must be >= 0"),
])
def test_bond_options_are_checked(change, message):
  config = long_time.get_config("test")
  if "bond_head" in change:
    config.model.bond_head = change["bond_head"]
  else:
    config.train.bond_target_weight = change["bond_target_weight"]
  with pytest.raises(errors.ConfigError, match=message):
    run_config.RunConfig.of(config)


def test_bond_targets_need_one_time_index():
  config = long_time.get_config("demo")
  config.model.bond_head = True
  config.train.bond_target_weight = 1.0
  with pytest.raises(errors.ConfigError, match="one time index"):
    run_config.RunConfig.of(config)


def test_the_gcn_has_no_bond_head():
  config = fast.get_config("test")
  config.model.update(architecture="gcn", bond_head=True)
  with pytest.raises(ValueError, match="bond_head needs"):
    models.make_network(config.model)


def test_checkpoints_of_a_bond_head_hold_its_parameters():
  """What apply and evaluate check a checkpoint against: the head is part
  of the model's parameters, so its checkpoints load like any other."""
  config = _bond_config()
  shapes = models.param_shapes(config.model)
  head = {m: s for m, s in shapes.items() if "bond_decoder" in m}
  assert head and all(len(s["w"]) == 2 for s in head.values())
  config.model.bond_head = False
  assert set(models.param_shapes(config.model)) == set(shapes) - set(head)
