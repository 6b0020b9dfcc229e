"""The network: shapes, fused == reference, equivariance, padding, seeds,
and the speed and memory options (remat, bfloat16, edge chunks) against the
float32 oracle."""

import itertools

import jax
import ml_collections
import numpy as np
import pytest

from glassy_jax.configs import bapst
from glassy_jax.formats import data as data_lib
from glassy_jax.network import model_config as options
from glassy_jax.network import models
from glassy_jax.network import tf_checkpoint
from glassy_jax.physics import graphs as graphs_lib
from conftest import reference_file
from conftest import synthetic_system


# configs/fast.py's model options, with fewer channels.
FAST_OPTIONS = dict(edge_features="vector_rbf", angular_channels=3,
                    aggregation_scale=1 / 41)


@pytest.fixture(scope="module")
def snapshot():
  return data_lib.to_snapshot(synthetic_system(7, n=216), 0)


def model_config(**overrides):
  config = bapst.get_config().model
  config.update(overrides)
  return config


def predict(config, graph, seed=0, params=None):
  network = models.make_network(config)
  params = params or network.init(jax.random.PRNGKey(seed), graph)
  return np.asarray(jax.jit(network.apply)(params, None, graph)), params


def test_parameter_shapes_follow_the_specification(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  _, params = predict(model_config(), graph)
  shapes = {k: v["w"].shape for k, v in params.items()}
  assert shapes == {
      "bapst/~/encoder_node/~/linear_0": (1, 64),
      "bapst/~/encoder_node/~/linear_1": (64, 64),
      "bapst/~/encoder_edge/~/linear_0": (3, 64),
      "bapst/~/encoder_edge/~/linear_1": (64, 64),
      "bapst/~/processor_edge/~/linear_0": (384, 64),
      "bapst/~/processor_edge/~/linear_1": (64, 64),
      "bapst/~/processor_node/~/linear_0": (192, 64),
      "bapst/~/processor_node/~/linear_1": (64, 64),
      "bapst/~/decoder/~/linear_0": (64, 64),
      "bapst/~/decoder/~/linear_1": (64, 64),
      "bapst/~/decoder/~/linear_2": (64, 1),
  }
  assert models.param_shapes(model_config()) == {
      module: {name: leaf.shape for name, leaf in leaves.items()}
      for module, leaves in params.items()}


@pytest.mark.parametrize("order, shared, features", list(itertools.product(
    options.UPDATE_ORDERS, [True, False], options.NODE_FEATURES)))
def test_fused_equals_reference(snapshot, order, shared, features):
  graph = graphs_lib.build_graph(snapshot)
  options = dict(update_order=order, shared_weights=shared,
                 node_features=features)
  # Scale parameters down so activations have physical magnitudes (~1).
  reference, params = predict(
      model_config(implementation="reference", **options), graph)
  params = jax.tree.map(lambda p: p * 0.5, params)
  reference, _ = predict(model_config(implementation="reference", **options),
                         graph, params=params)
  fused, _ = predict(model_config(implementation="fused", **options), graph,
                     params=params)
  assert reference.shape == (len(snapshot.types),)
  scale = np.abs(reference).max()
  np.testing.assert_allclose(fused / scale, reference / scale, atol=1e-5)


def test_unshared_weights_have_one_block_per_step(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  _, params = predict(model_config(shared_weights=False, num_steps=3), graph)
  assert sorted(k for k in params if "processor_edge" in k) == [
      f"bapst/~/processor_edge_{s}/~/linear_{l}"
      for s in range(3) for l in range(2)]


@pytest.mark.parametrize("implementation, options", list(itertools.product(
    options.IMPLEMENTATIONS, [{}, FAST_OPTIONS])))
def test_permutation_equivariance(snapshot, implementation, options):
  config = model_config(implementation=implementation, **options)
  original, params = predict(config, graphs_lib.build_graph(snapshot))
  perm = np.random.default_rng(0).permutation(len(snapshot.types))
  permuted = snapshot._replace(positions=snapshot.positions[perm],
                               types=snapshot.types[perm])
  shuffled, _ = predict(config, graphs_lib.build_graph(permuted),
                        params=params)
  np.testing.assert_allclose(shuffled, original[perm], rtol=1e-4, atol=1e-4)


def test_translation_invariance(snapshot):
  config = model_config()
  original, params = predict(config, graphs_lib.build_graph(snapshot))
  moved = snapshot._replace(positions=snapshot.positions + [3.3, -7.1, 40.0])
  shifted, _ = predict(config, graphs_lib.build_graph(moved), params=params)
  np.testing.assert_allclose(shifted, original, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("options", [
    dict(implementation="reference"), dict(implementation="fused"),
    dict(implementation="fused", edge_chunk_size=1000, remat=True)])
def test_padding_does_not_change_real_predictions(snapshot, options):
  config = model_config(**options)
  graph = graphs_lib.build_graph(snapshot)
  unpadded, params = predict(config, graph)
  budget = graphs_lib.PaddingBudget(
      n_node=len(snapshot.types) + 37, n_edge=int(graph.n_edge[0]) + 999,
      n_graph=3)
  padded, _, mask = graphs_lib.pad_batch([graph], [snapshot.types * 0.0],
                                         budget)
  predictions, _ = predict(config, padded, params=params)
  np.testing.assert_allclose(predictions[mask], unpadded, rtol=1e-5,
                             atol=1e-5)


def test_deterministic_under_a_fixed_seed(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  a, params_a = predict(model_config(), graph, seed=3)
  b, params_b = predict(model_config(), graph, seed=3)
  c, _ = predict(model_config(), graph, seed=4)
  jax.tree.map(np.testing.assert_array_equal, params_a, params_b)
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_initialisers_are_tf1_variance_scaling(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  _, params = predict(model_config(), graph)
  w = np.asarray(params["bapst/~/processor_edge/~/linear_0"]["w"])
  b = np.asarray(params["bapst/~/processor_edge/~/linear_0"]["b"])
  # TF1 variance scaling: a normal truncated at 2 sigma, sigma enlarged by
  # 1 / 0.8796 so that the standard deviation is sqrt(scale / fan_in).
  np.testing.assert_allclose(w.std(), np.sqrt(1 / 384), rtol=0.05)
  assert np.abs(w).max() <= 2 * np.sqrt(1 / 384) / 0.87962566 + 1e-6
  assert np.abs(b).max() <= 2 * np.sqrt(0.1 / 64) / 0.87962566 + 1e-6
  assert b.std() > 0


def test_bad_option_is_named(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  with pytest.raises(ValueError, match="model.update_order must be one of"):
    predict(model_config(update_order="bogus"), graph)


def small_params(config, graph):
  """Parameters scaled so activations have physical magnitudes (~1)."""
  params = models.make_network(config).init(jax.random.PRNGKey(0), graph)
  return jax.tree.map(lambda p: p * 0.5, params)


def loss_and_grads(config, graph, params):
  network = models.make_network(config)

  def loss(p):
    return jax.numpy.sum(network.apply(p, None, graph) ** 2)

  return jax.jit(jax.value_and_grad(loss))(params)


def assert_gradients_close(actual, expected):
  """Every gradient equal to 1e-5 of its own largest element."""
  for key, value in expected.items():
    for name, grad in value.items():
      grad_scale = np.abs(grad).max() + 1e-12
      np.testing.assert_allclose(
          np.asarray(actual[key][name]) / grad_scale,
          np.asarray(grad) / grad_scale, atol=1e-5, err_msg=f"{key}/{name}")


def assert_same_function(variant, baseline, graph, params):
  """`variant` config computes `baseline`'s outputs, loss and gradients
  (1e-5 of the largest element); returns the baseline's outputs."""
  expected, _ = predict(baseline, graph, params=params)
  actual, _ = predict(variant, graph, params=params)
  scale = np.abs(expected).max()
  np.testing.assert_allclose(actual / scale, expected / scale, atol=1e-5)
  loss, grads = loss_and_grads(baseline, graph, params)
  variant_loss, variant_grads = loss_and_grads(variant, graph, params)
  np.testing.assert_allclose(variant_loss, loss, rtol=1e-5)
  assert_gradients_close(variant_grads, grads)
  return expected


@pytest.mark.parametrize("implementation, order", list(itertools.product(
    options.IMPLEMENTATIONS, options.UPDATE_ORDERS)))
def test_remat_changes_neither_outputs_nor_gradients(snapshot, implementation,
                                                     order):
  graph = graphs_lib.build_graph(snapshot)
  plain = model_config(implementation=implementation, update_order=order)
  remat = model_config(implementation=implementation, update_order=order,
                       remat=True)
  assert_same_function(remat, plain, graph, small_params(plain, graph))


def test_fused_gradients_equal_reference_gradients(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  reference = model_config(implementation="reference")
  params = small_params(reference, graph)
  loss, grads = loss_and_grads(reference, graph, params)
  fused_loss, fused_grads = loss_and_grads(
      model_config(implementation="fused"), graph, params)
  np.testing.assert_allclose(fused_loss, loss, rtol=1e-5)
  assert_gradients_close(fused_grads, grads)


@pytest.mark.parametrize("implementation", options.IMPLEMENTATIONS)
def test_bfloat16_compute_keeps_float32_params_and_outputs(snapshot,
                                                          implementation):
  graph = graphs_lib.build_graph(snapshot)
  f32 = model_config(implementation=implementation)
  params = small_params(f32, graph)
  reference, _ = predict(f32, graph, params=params)
  bf16_config = model_config(implementation=implementation,
                             compute_dtype="bfloat16")
  bf16, bf16_params = predict(bf16_config, graph)
  assert {p.dtype for p in jax.tree.leaves(bf16_params)} == {np.dtype("float32")}
  bf16, _ = predict(bf16_config, graph, params=params)
  assert bf16.dtype == np.float32
  scale = np.abs(reference).max()
  np.testing.assert_allclose(bf16 / scale, reference / scale, atol=5e-2)


def test_bfloat16_accuracy_on_the_published_checkpoint():
  """bfloat16 against float32 where outputs carry signal: the published
  checkpoint on the 4096-particle glass (benchmarks/README.md has the
  measured agreement)."""
  glass = np.load(reference_file("ka4096_T044.npz"))
  index = reference_file("deepmind", "t044_s09.ckpt.index")
  params = tf_checkpoint.load_bapst(index[:-len(".index")])
  graph = graphs_lib.build_graph(data_lib.Snapshot(
      glass["positions"], glass["types"], glass["box"], None))
  bf16, _ = predict(model_config(compute_dtype="bfloat16"), graph,
                    params=params)
  expected = glass["reference_predictions"]
  assert np.abs(bf16 - expected).max() < 0.1 * np.abs(expected).max()
  assert np.corrcoef(bf16, expected)[0, 1] > 0.99


def test_bad_compute_dtype_is_named(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  with pytest.raises(ValueError, match="model.compute_dtype must be one of"):
    predict(model_config(compute_dtype="float16"), graph)


def test_configs_without_the_later_options_still_build(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  config = model_config()
  expected, params = predict(config, graph)
  old = ml_collections.ConfigDict({
      k: v for k, v in config.items()
      if k not in ("remat", "compute_dtype", "edge_chunk_size",
                   "edge_features", "radial_min", "radial_max",
                   "radial_count", "angular_channels", "aggregation_scale")})
  np.testing.assert_array_equal(predict(old, graph, params=params)[0],
                                expected)


# 8,220 edges: 1000 leaves a partial last chunk, 2055 divides them, 10**6 is
# one chunk (clamped to E).
@pytest.mark.parametrize("chunk, remat, order, shared", [
    (1000, True, "sequential", True),
    (2055, False, "sequential", False),
    (10**6, True, "parallel", True),
    (1000, True, "parallel", False),
])
def test_edge_chunks_change_neither_outputs_nor_gradients(
    snapshot, chunk, remat, order, shared):
  graph = graphs_lib.build_graph(snapshot)
  options = dict(update_order=order, shared_weights=shared)
  fused = model_config(**options)
  chunked = model_config(edge_chunk_size=chunk, remat=remat, **options)
  params = small_params(fused, graph)
  expected = assert_same_function(chunked, fused, graph, params)
  reference, _ = predict(model_config(implementation="reference", **options),
                         graph, params=params)
  scale = np.abs(expected).max()
  np.testing.assert_allclose(reference / scale, expected / scale, atol=1e-5)


def test_edge_chunks_bound_backward_memory(snapshot):
  """XLA's temporary memory for forward+backward, in [E, 64] float32 arrays:
  tens unchunked; chunked with remat, 2 h_e snapshots, one cotangent and the
  [N, 64] arrays (BUILD_NOTES.md has the measured figures)."""
  graph = graphs_lib.build_graph(snapshot)

  def temp_arrays(config):
    network = models.make_network(config)
    params = network.init(jax.random.PRNGKey(0), graph)
    grad = jax.jit(jax.grad(
        lambda p: jax.numpy.sum(network.apply(p, None, graph) ** 2)))
    size = grad.lower(params).compile().memory_analysis().temp_size_in_bytes
    return size / (graph.edges.shape[0] * 64 * 4)

  assert temp_arrays(model_config()) > 30
  assert temp_arrays(model_config(edge_chunk_size=1000, remat=True)) < 10


@pytest.mark.parametrize("options, message", [
    (dict(edge_chunk_size=-1), "model.edge_chunk_size must be an integer"),
    (dict(edge_chunk_size=1000, implementation="reference"),
     "model.edge_chunk_size needs model.implementation 'fused'"),
])
def test_bad_edge_chunk_size_is_named(snapshot, options, message):
  graph = graphs_lib.build_graph(snapshot)
  with pytest.raises(ValueError, match=message):
    predict(model_config(**options), graph)


# ------------------------------------------ the fast variant's options


@pytest.mark.parametrize("order", options.UPDATE_ORDERS)
def test_fast_options_fused_equals_reference(snapshot, order):
  graph = graphs_lib.build_graph(snapshot)
  config = model_config(update_order=order, **FAST_OPTIONS)
  params = small_params(config, graph)
  assert_same_function(config, model_config(
      update_order=order, implementation="reference", **FAST_OPTIONS),
                       graph, params)


def test_fast_options_with_edge_chunks(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  config = model_config(**FAST_OPTIONS)
  assert_same_function(model_config(edge_chunk_size=1000, remat=True,
                                    **FAST_OPTIONS),
                       config, graph, small_params(config, graph))


def test_fast_options_change_only_the_first_layers(snapshot):
  graph = graphs_lib.build_graph(snapshot)
  _, params = predict(model_config(**FAST_OPTIONS), graph)
  assert params["bapst/~/encoder_edge/~/linear_0"]["w"].shape == (3 + 48, 64)
  # Type + 2 Gram matrices of 3 channels (6 upper entries each).
  assert params["bapst/~/encoder_node/~/linear_0"]["w"].shape == (1 + 12, 64)
  assert params["bapst/~/angular_invariants/radial_weights"]["w"].shape == (
      48, 6)
  assert params["bapst/~/processor_edge/~/linear_0"]["w"].shape == (384, 64)


def test_aggregation_scale_scales_the_received_sums(snapshot):
  """Scale 1 is DeepMind's network; scale s equals the network whose node
  MLP weights on the received block are multiplied by s."""
  graph = graphs_lib.build_graph(snapshot)
  default, params = predict(model_config(), graph)
  same, _ = predict(model_config(aggregation_scale=1.0), graph, params=params)
  np.testing.assert_array_equal(same, default)
  scaled, _ = predict(model_config(aggregation_scale=0.25), graph,
                      params=params)
  node = "bapst/~/processor_node/~/linear_0"
  w = np.array(params[node]["w"])
  w[:64] *= 0.25  # [received, node_in]: the received block comes first.
  moved = dict(params, **{node: dict(params[node], w=w)})
  expected, _ = predict(model_config(), graph, params=moved)
  np.testing.assert_allclose(scaled, expected, rtol=1e-5, atol=1e-5)
  assert not np.allclose(scaled, default)


@pytest.mark.parametrize("options, message", [
    (dict(edge_features="distance"), "model.edge_features must be one of"),
    (dict(num_steps=0), "model.num_steps must be >= 1"),
    (dict(angular_channels=-2), "model.angular_channels must be an integer"),
    (dict(edge_features="vector_rbf", radial_count=1),
     "the radial basis needs count >= 2")])
def test_bad_fast_option_is_named(snapshot, options, message):
  with pytest.raises(ValueError, match=message):
    predict(model_config(**options), graphs_lib.build_graph(snapshot))


def test_one_output_per_time_index_of_a_joint_model(snapshot):
  """K decoder outputs give [n_node, K]; DeepMind's one output keeps
  [n_node] (the published checkpoint's shape)."""
  graph = graphs_lib.build_graph(snapshot)
  joint, _ = predict(model_config(num_steps=1, decoder_sizes=(64, 3)), graph)
  single, _ = predict(model_config(num_steps=1, decoder_sizes=(64, 1)), graph)
  assert joint.shape == (216, 3) and single.shape == (216,)


def test_predictor_undoes_the_target_scale_at_full_precision(snapshot):
  """The one inference path (training evaluation, apply, evaluate): physical
  units, and float32 matrix products on every backend (no TF32)."""
  graph = graphs_lib.build_graph(snapshot)
  network = models.make_network(model_config())
  raw, params = predict(model_config(), graph)
  predictor = models.make_predictor(network, target_mean=0.1, target_std=0.02)
  np.testing.assert_allclose(np.asarray(predictor(params, graph)),
                             raw * 0.02 + 0.1, rtol=1e-5, atol=1e-6)
  hlo = predictor.lower(params, graph).as_text()
  assert "dot_general" in hlo and "HIGHEST" in hlo
