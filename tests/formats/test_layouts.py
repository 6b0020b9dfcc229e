"""The field's dataset layouts: Shiba et al.'s and GlassBench's, beside DeepMind's."""

import os

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.inference import evaluate
from glassy_jax.scoring import tables
import conftest

N = 64
BOX = (N / layouts.FIELD_DENSITY) ** (1 / 3)


def _configuration(seed, n=N):
  rng = np.random.default_rng(seed)
  types = (rng.random(n) < 0.2).astype(np.int64)
  box = (n / layouts.FIELD_DENSITY) ** (1 / 3)
  return rng.uniform(0, box, (n, 3)), types


def write_shiba(directory, split, identity, time_point, runs=4, seed=None,
                **overrides):
  """One Shiba-layout file; returns its arrays."""
  initial, types = _configuration(identity if seed is None else seed)
  rng = np.random.default_rng(1000 * identity + time_point)
  arrays = dict(types=types, initial_positions=initial,
                positions=initial[None] + rng.normal(0, 0.3, (runs, N, 3)))
  arrays.update(overrides)
  path = os.path.join(directory, split,
                      f"isoconfig_N{N}T0.44_{identity}_tc{time_point:02d}.npz")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez(path, **arrays)
  return arrays


def write_glassbench(directory, split, identity, n=N, **overrides):
  initial, types = _configuration(identity, n)
  rng = np.random.default_rng(identity)
  arrays = dict(types=types, initial_positions=initial,
                md_prop=rng.random((10, n)), bb_prop=rng.random((10, n)),
                inherent_positions=initial + 0.01,
                botan_prop=rng.random((10, n)))
  for key, value in overrides.items():  # None: leave the key out.
    if value is None:
      arrays.pop(key)
    else:
      arrays[key] = value
  path = os.path.join(directory, split, f"N{n}T0.64_{identity}.npz")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez(path, **arrays)
  return arrays


def test_shiba_configurations_in_numerical_order_with_time_points(tmp_path):
  for identity in (10, 2, 1):
    write_shiba(tmp_path, "train", identity, 7)
    write_shiba(tmp_path, "train", identity, 3)
  files = layouts.list_files(str(tmp_path), "train")
  assert [os.path.basename(f) for f in files] == [
      f"isoconfig_N{N}T0.44_{k}_tc*.npz" for k in (1, 2, 10)]
  system = layouts.load_system(files[0])
  assert data.available_time_indices(system) == [3, 7]
  assert system["metadata"]["temperature"] == 0.44
  np.testing.assert_allclose(system["box"], BOX)


def test_shiba_propensity_is_the_mean_displacement_over_runs(tmp_path):
  arrays = write_shiba(tmp_path, "test", 5, 7)
  system = layouts.load_system(layouts.list_files(str(tmp_path), "test")[0])
  expected = np.mean([np.linalg.norm(p - arrays["initial_positions"], axis=1)
                      for p in arrays["positions"]], axis=0)
  np.testing.assert_allclose(data.system_targets(system, 7), expected,
                             rtol=1e-6)
  # A single file, as `apply --input` names it, reads alike.
  single = layouts.load_system(os.path.join(
      tmp_path, "test", f"isoconfig_N{N}T0.44_5_tc07.npz"))
  np.testing.assert_array_equal(single["targets"][7], system["targets"][7])


def test_shiba_missing_time_point_names_the_ones_there(tmp_path):
  write_shiba(tmp_path, "train", 1, 7)
  path = layouts.list_files(str(tmp_path), "train")[0]
  with pytest.raises(data.DataError, match=r"no time point at time index 3 "
                     r"\(it has tc07\)"):
    tables.read_scored_files([path], [3])


def test_shiba_other_keys_are_named(tmp_path):
  initial, types = _configuration(0)
  os.makedirs(tmp_path / "train")
  path = tmp_path / "train" / f"isoconfig_N{N}T0.44_1_tc07.npz"
  np.savez(path, types=types, pos=initial)
  with pytest.raises(data.DataError) as error:
    layouts.load_system(str(path))
  assert str(error.value) == (f"{path}: missing key(s) initial_positions, "
                              "positions (it has pos, types)")


def test_shiba_runs_of_different_lengths_are_refused(tmp_path):
  write_shiba(tmp_path, "train", 1, 3, runs=4)
  write_shiba(tmp_path, "train", 1, 7, runs=5)
  path = layouts.list_files(str(tmp_path), "train")[0]
  with pytest.raises(data.DataError, match="different numbers of runs "
                     r"\(tc03: 4, tc07: 5\)"):
    layouts.load_system(path)


def test_shiba_files_of_one_configuration_must_agree(tmp_path):
  write_shiba(tmp_path, "train", 1, 3)
  write_shiba(tmp_path, "train", 1, 7, seed=99)
  with pytest.raises(data.DataError, match="initial_positions differ"):
    layouts.load_system(layouts.list_files(str(tmp_path), "train")[0])


def test_shiba_positions_of_another_shape_are_refused(tmp_path):
  write_shiba(tmp_path, "train", 1, 7,
              positions=np.zeros((4, N - 1, 3)))
  with pytest.raises(data.DataError, match=rf"positions must be \[runs, {N}, "
                     rf"3\], got \(4, {N - 1}, 3\)"):
    layouts.load_system(layouts.list_files(str(tmp_path), "train")[0])


def test_glassbench_targets_inherent_structure_and_field_predictions(
    tmp_path):
  arrays = write_glassbench(tmp_path, "test", 401)
  write_glassbench(tmp_path, "test", 42)
  files = layouts.list_files(str(tmp_path), "test")
  assert [os.path.basename(f) for f in files] == [f"N{N}T0.64_42.npz",
                                                  f"N{N}T0.64_401.npz"]
  system = layouts.load_system(files[1])
  assert data.available_time_indices(system) == list(range(10))
  np.testing.assert_allclose(data.system_targets(system, 9),
                             arrays["md_prop"][9], rtol=1e-6)
  assert sorted(system["field_predictions"]) == ["botan_prop"]
  snapshot = data.to_snapshot(system, 9, files[1])
  np.testing.assert_array_equal(snapshot.inherent_positions,
                                arrays["inherent_positions"])
  assert system["metadata"]["temperature"] == 0.64


def test_glassbench_file_without_propensities_names_its_keys(tmp_path):
  write_glassbench(tmp_path, "train", 1, md_prop=None)
  path = layouts.list_files(str(tmp_path), "train")[0]
  with pytest.raises(data.DataError, match=r"missing key\(s\) md_prop "
                     r"\(it has bb_prop, botan_prop, "):
    layouts.load_system(path)


def test_unknown_layout_says_what_it_expects(tmp_path):
  os.makedirs(tmp_path / "train")
  (tmp_path / "train" / "notes.txt").write_text("x")
  with pytest.raises(data.DataError, match="expected DeepMind's aggregated"):
    layouts.list_files(str(tmp_path), "train")


def test_deepmind_layout_unchanged(synthetic_dataset):
  files = layouts.list_files(synthetic_dataset, "train")
  assert [os.path.basename(f) for f in files] == [
      f"aggregated-{i:03d}.pickle" for i in range(4)]
  assert layouts.load_system(files[0])["box"].shape == (3,)


def test_shibas_real_sample_reads_as_it_is():
  directory = conftest.reference_file("botan", "T0.44")
  train = layouts.list_files(directory, "train")
  test = layouts.list_files(directory, "test")
  assert len(train) == 10 and len(test) == 5
  snapshot = layouts.load_snapshot(test[0], 7)
  assert snapshot.positions.shape == (4096, 3)
  assert int((snapshot.types == 0).sum()) == 3277
  np.testing.assert_allclose(snapshot.box, 15.05658, atol=1e-5)
  # Near tau_alpha: A particles have moved ~0.4 sigma on average.
  assert 0.35 < snapshot.targets[snapshot.types == 0].mean() < 0.45


def test_evaluate_adds_the_field_models_rows(tmp_path):
  """A GlassBench test split: the checkpoint's rows, then one per model
  whose predictions the files carry, scored on the same configurations."""
  written = [write_glassbench(tmp_path, "test", k, n=400) for k in (1, 2)]
  checkpoint = tmp_path / "random.npz"
  conftest.make_random_checkpoint(checkpoint)
  rows = evaluate.evaluate_checkpoint(str(checkpoint), str(tmp_path),
                                      time_indices=[0, 9])
  assert [(r["model"], r["time_index"]) for r in rows] == [
      (str(checkpoint), 0), (str(checkpoint), 9), ("field:botan_prop", 0),
      ("field:botan_prop", 9)]
  expected = np.mean([np.corrcoef(a["botan_prop"][9][a["types"] == 0],
                                  a["md_prop"][9][a["types"] == 0])[0, 1]
                      for a in written])
  np.testing.assert_allclose(rows[-1]["pearson_a"], expected, rtol=1e-5)
