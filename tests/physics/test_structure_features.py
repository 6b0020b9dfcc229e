"""Coarse-grained structural descriptors and the network inputs built on them."""

import dataclasses

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.network import model_inputs
from glassy_jax.physics import structure_features


def _system(seed, n=300, box_length=7.0):
  rng = np.random.default_rng(seed)
  positions = rng.uniform(0, box_length, (n, 3))
  types = (rng.random(n) < 0.2).astype(np.int32)
  return data.Snapshot(positions, types, np.full(3, box_length), None, "x")


def test_coarse_grain_matches_brute_force():
  snapshot = _system(0)
  features = np.random.default_rng(1).normal(size=(300, 3))
  scales = (1.5, 3.0)
  coarse = structure_features.coarse_grain(features, snapshot.positions,
                                           snapshot.box, scales)
  assert coarse.shape == (300, 9)
  np.testing.assert_allclose(coarse[:, :3], features)
  box = snapshot.box
  for block, scale in enumerate(scales, start=1):
    for i in (0, 17, 299):
      d = snapshot.positions - snapshot.positions[i]
      d -= box * np.round(d / box)
      distance = np.linalg.norm(d, axis=1)
      inside = distance < scale
      weights = np.exp(-distance[inside] / (scale / 3))
      expected = weights @ features[inside] / weights.sum()
      np.testing.assert_allclose(coarse[i, 3 * block:3 * block + 3],
                                 expected, rtol=1e-10)


def test_descriptors_follow_a_permutation_of_the_particles():
  snapshot = _system(2)
  order = np.random.default_rng(3).permutation(300)
  permuted = snapshot._replace(positions=snapshot.positions[order],
                               types=snapshot.types[order])
  scales = (1.5, 3.0)
  np.testing.assert_allclose(
      structure_features.coarse_descriptors(permuted, scales),
      structure_features.coarse_descriptors(snapshot, scales)[order],
      rtol=1e-10, atol=1e-12)


def test_descriptors_are_invariant_under_rotation_and_reflection():
  snapshot = _system(4, box_length=7.0)
  # An axis permutation with a reflection maps the periodic box to itself.
  moved = snapshot._replace(
      positions=snapshot.box - snapshot.positions[:, [2, 0, 1]])
  scales = (2.0,)
  np.testing.assert_allclose(
      structure_features.coarse_descriptors(moved, scales),
      structure_features.coarse_descriptors(snapshot, scales),
      rtol=1e-9, atol=1e-9)


def test_relaxation_distance_takes_the_minimum_image():
  thermal = _system(8, n=4)
  shift = np.array([[0.1, 0.0, 0.0], [0.0, -0.2, 0.0], [6.9, 0.0, 0.0],
                    [0.0, 0.0, -6.7]])  # The last two cross the box.
  inherent = thermal._replace(positions=thermal.positions + shift)
  np.testing.assert_allclose(
      structure_features.relaxation_distance(thermal, inherent),
      [0.1, 0.2, 0.1, 0.3], rtol=1e-9)


def test_relaxation_descriptors_are_the_inherent_ones_then_the_distance(
    tmp_path, monkeypatch):
  """A file that carries its inherent structure (as GlassBench's do): the
  columns are the inherent structure's coarse descriptors, then the
  relaxation distance coarse-grained over the inherent positions."""
  monkeypatch.setenv("GLASSY_JAX_CACHE", str(tmp_path))
  thermal = _system(9)
  moved = thermal.positions + np.random.default_rng(10).normal(
      scale=0.05, size=thermal.positions.shape)
  snapshot = thermal._replace(inherent_positions=moved)
  scales = (1.5, 3.0)
  spec = model_inputs.InputSpec(descriptors="coarse_relaxation",
                                coarse_scales=scales)
  columns = model_inputs.descriptors(snapshot, spec)
  assert columns.shape == (300, spec.num_descriptors)
  inherent = thermal._replace(positions=moved)
  count = structure_features.coarse_descriptor_count(scales)
  np.testing.assert_allclose(
      columns[:, :count],
      structure_features.coarse_descriptors(inherent, scales), rtol=1e-5)
  distance = np.linalg.norm(moved - thermal.positions, axis=1)
  np.testing.assert_allclose(columns[:, count], distance, rtol=1e-5)
  np.testing.assert_allclose(
      columns[:, count:], structure_features.coarse_grain(
          distance[:, None], moved, thermal.box, scales), rtol=1e-5)
  # Another minimum of the same thermal structure is another cache entry.
  other = thermal._replace(inherent_positions=thermal.positions)
  np.testing.assert_allclose(
      model_inputs.descriptors(other, spec)[:, count:], 0, atol=1e-12)


def test_all_three_descriptor_blocks_are_thermal_inherent_relaxation(
    tmp_path, monkeypatch):
  """"coarse_both_relaxation" (the demo's joint model): the thermal
  structure's coarse descriptors, then "coarse_relaxation"'s columns."""
  monkeypatch.setenv("GLASSY_JAX_CACHE", str(tmp_path))
  thermal = _system(11)
  snapshot = thermal._replace(inherent_positions=thermal.positions + 0.03)
  scales = (1.5, 3.0)
  spec = model_inputs.InputSpec(descriptors="coarse_both_relaxation",
                                coarse_scales=scales)
  columns = model_inputs.descriptors(snapshot, spec)
  count = structure_features.coarse_descriptor_count(scales)
  assert columns.shape == (300, spec.num_descriptors)
  assert spec.num_descriptors == 2 * count + 1 + len(scales)
  np.testing.assert_allclose(
      columns[:, :count],
      structure_features.coarse_descriptors(thermal, scales), rtol=1e-5)
  np.testing.assert_array_equal(columns[:, count:], model_inputs.descriptors(
      snapshot, model_inputs.InputSpec(descriptors="coarse_relaxation",
                                       coarse_scales=scales)))
  np.testing.assert_allclose(columns[:, -1 - len(scales)], 0.03 * np.sqrt(3),
                             rtol=1e-5)


def test_input_graph_has_standardised_descriptor_columns(tmp_path,
                                                         monkeypatch):
  monkeypatch.setenv("GLASSY_JAX_CACHE", str(tmp_path))
  spec = model_inputs.InputSpec(descriptors="coarse", coarse_scales=(1.5,))
  assert spec.num_descriptors == structure_features.coarse_descriptor_count(
      (1.5,)) == 2 * (2 * structure_features.RADIAL_BINS + 1)
  graphs = [model_inputs.raw_graph(_system(s), spec) for s in (5, 6)]
  assert graphs[0].nodes.shape == (300, 1 + spec.num_descriptors)
  np.testing.assert_array_equal(graphs[0].nodes[:, 0], _system(5).types)
  spec = model_inputs.with_statistics(
      spec, model_inputs.descriptor_moments(graphs))
  standardised = np.concatenate(
      [model_inputs.standardise(g, spec).nodes[:, 1:] for g in graphs])
  varying = standardised.std(axis=0) > 0
  np.testing.assert_allclose(standardised.mean(axis=0), 0, atol=1e-4)
  np.testing.assert_allclose(standardised.std(axis=0)[varying], 1, rtol=1e-4)
  # The second build reads the cache and agrees.
  again = model_inputs.build_graph(_system(5), spec)
  np.testing.assert_allclose(again.nodes, model_inputs.standardise(
      graphs[0], spec).nodes, rtol=1e-6)


def test_input_spec_refuses_bad_values():
  with pytest.raises(ValueError, match="data.descriptors must be one of"):
    model_inputs.InputSpec(descriptors="radial")
  with pytest.raises(ValueError, match="data.cutoff must be > 0"):
    model_inputs.InputSpec(cutoff=-1)
  with pytest.raises(ValueError, match="positive lengths"):
    model_inputs.InputSpec(descriptors="coarse", coarse_scales=(0.0,))
  spec = model_inputs.InputSpec(descriptors="coarse", coarse_scales=(1.5,))
  with pytest.raises(ValueError, match="descriptor statistics"):
    model_inputs.standardise(model_inputs.raw_graph(_system(7), spec),
                             dataclasses.replace(spec))
