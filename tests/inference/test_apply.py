"""The apply tool: checkpoints in, propensities out, for every input format."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.inference import apply
from glassy_jax.scoring import metrics
from glassy_jax.training import checkpoints
from glassy_jax.training import input_pipeline

from conftest import REPO, reference_file
from conftest import make_random_checkpoint, synthetic_system
from conftest import PUBLISHED_CHECKPOINT as PREFIX

# A 4096-particle Kob-Andersen system shipped with the package (T = 0.64).
DEMO = os.path.join(input_pipeline.DEMO_DATA, "test", "aggregated-000.pickle")


def _cli(*args):
  return subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.apply", *args],
      cwd=REPO, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def demo():
  """The demo system's structure and its targets at time index 0."""
  return data.to_snapshot(data.load_system(DEMO), 0, DEMO)


@pytest.fixture(scope="module")
def expected(demo):
  """The published network's predictions for the demo structure, read from
  the TF checkpoint in-process: what every input format must reproduce."""
  predict_fn, _ = apply.load_model(PREFIX)
  return apply.predict_snapshots(predict_fn, [demo])[0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, demo):
  """The demo structure as a 2-frame LAMMPS dump and a data file."""
  root = tmp_path_factory.mktemp("apply")
  lammps = root / "lammps"
  positions = demo.positions % demo.box
  frame = lammps_io.make_frame(positions, demo.types, demo.box,
                               unwrapped=False)
  # A translated copy: same structure, so the same predictions.
  shifted = frame._replace(timestep=1000, positions=frame.positions + 0.7)
  lammps_io.write_dump(str(lammps / "demo.dump"), [frame, shifted])
  rows = np.column_stack([np.arange(1, len(demo.types) + 1), demo.types + 1,
                          positions])
  with open(lammps / "demo.data", "w") as f:
    f.write(f"demo\n\n{len(demo.types)} atoms\n2 atom types\n\n")
    f.write("".join(f"0.0 {length!r} {axis}lo {axis}hi\n"
                    for length, axis in zip(demo.box.tolist(), "xyz")))
    f.write("\nAtoms # atomic\n\n")
    np.savetxt(f, rows, fmt=["%d", "%d", "%.17g", "%.17g", "%.17g"])
  return root


def test_bundled_network_on_demo_pickle(tmp_path, demo, expected):
  """The bundled t044_s09, by name, on a shipped system: the CLI's targets
  are the file's at the checkpoint's time index (0), its predictions the
  TF checkpoint's, and they correlate as measured (r(A) = 0.81)."""
  out = tmp_path / "demo.npz"
  result = _cli("--checkpoint=t044_s09", f"--input={DEMO}", f"--output={out}")
  assert result.returncode == 0, result.stderr
  assert "time index 0: Pearson" in result.stdout
  with np.load(out) as z:
    arrays = dict(z)
  for key in ("predictions", "types", "targets"):
    assert arrays[key].shape == (4096,), key
  np.testing.assert_array_equal(arrays["targets"], demo.targets)
  np.testing.assert_allclose(arrays["predictions"], expected, atol=1e-5)
  a = demo.types == 0
  r = metrics.pearson(arrays["predictions"][a], demo.targets[a])
  print(f"Pearson r (A) = {r:.4f}")
  assert float(arrays["pearson_a"]) == pytest.approx(r)
  assert r > 0.75


def test_a_runs_checkpoints_are_read_by_directory_and_step(tmp_path, demo,
                                                           expected):
  """apply reads a run's orbax checkpoints: its checkpoints directory (the
  newest step) and one step directory, as the CLI's `--checkpoint`."""
  params, metadata = checkpoints.load_params("t044_s09")
  run = tmp_path / "checkpoints"
  with checkpoints.CheckpointManager(str(run)) as manager:
    manager.save(5, {"params": params},
                 dataclasses.replace(metadata, target_mean=1.5))
    manager.save(7, {"params": params}, metadata)
  newest, step_five = apply.load_model(str(run)), apply.load_model(
      str(run / "ckpt_000000005"))
  assert (newest[1].step, step_five[1].step) == (7, 5)
  np.testing.assert_allclose(
      apply.predict_snapshots(newest[0], [demo])[0], expected, atol=1e-5)
  np.testing.assert_allclose(
      apply.predict_snapshots(step_five[0], [demo])[0], expected + 1.5,
      atol=1e-5)
  out = tmp_path / "demo.npz"
  result = _cli(f"--checkpoint={run}", f"--input={DEMO}", f"--output={out}")
  assert result.returncode == 0, result.stderr
  with np.load(out) as z:
    np.testing.assert_allclose(z["predictions"], expected, atol=1e-5)


def test_deepmind_pickle_to_npz(tmp_path):
  """The TF checkpoint reproduces DeepMind's predictions for ka4096 (an
  optional reference file, not shipped)."""
  with np.load(reference_file("ka4096_T044.npz")) as z:
    ka4096 = dict(z)
  path = tmp_path / "aggregated_0.pickle"
  data.write_system(str(path), {
      "positions": ka4096["positions"],
      "types": ka4096["types"].astype(np.int32), "box": ka4096["box"],
      "targets": [ka4096["targets_t0132"], ka4096["targets_t0435"]],
      "metadata": {"temperature": 0.44}})
  out = tmp_path / "pickle_out.npz"
  result = _cli(f"--checkpoint={PREFIX}", f"--input={path}", f"--output={out}")
  assert result.returncode == 0, result.stderr
  assert "Pearson" in result.stdout
  with np.load(out) as z:
    for key in ("predictions", "types", "targets"):
      assert z[key].shape == (4096,), key
    np.testing.assert_allclose(z["targets"], ka4096["targets_t0132"])
    diff = np.abs(z["predictions"] - ka4096["reference_predictions"]).max()
    assert diff < 1e-4
    print(f"Pearson r (A) = {float(z['pearson_a']):.4f}")
    assert float(z["pearson_a"]) >= 0.9


def test_lammps_inputs_to_npz(inputs, expected):
  out = inputs / "lammps_out.npz"
  result = _cli("--checkpoint=t044_s09",
                f"--input={inputs / 'lammps' / 'demo.*'}", f"--output={out}",
                "--batch_size=2")
  assert result.returncode == 0, result.stderr
  with np.load(out) as z:
    assert z["predictions"].shape == (3, 4096)  # demo.data, then 2 dump frames.
    assert z["types"].shape == (3, 4096)
    assert "targets" not in z.files
    diff = np.abs(z["predictions"] - expected).max()
  assert diff < 1e-4


def test_lammps_output_has_propensity(inputs, demo, expected):
  out = inputs / "out.dump"
  result = _cli(f"--checkpoint={PREFIX}",
                f"--input={inputs / 'lammps' / 'demo.dump'}", f"--output={out}",
                "--format=lammps")
  assert result.returncode == 0, result.stderr
  frames = lammps_io.read_dump(str(out))
  assert [f.timestep for f in frames] == [0, 1000]
  for frame in frames:
    np.testing.assert_array_equal(frame.types, demo.types)
    assert np.abs(frame.extra["propensity"] - expected).max() < 1e-4


def test_bundled_checkpoints_by_name(tmp_path, monkeypatch):
  """Names resolve from any directory and in every loader (training's
  `init_from` uses `restore`); a file of that name, where one exists, wins."""
  assert checkpoints.bundled_names() == ["t044_s09"]
  path = checkpoints.resolve("t044_s09")
  assert path == os.path.join(checkpoints.PRETRAINED_DIR, "t044_s09.npz")
  params, _ = checkpoints.load_params("t044_s09")
  monkeypatch.chdir(tmp_path)
  restored, metadata = checkpoints.restore("t044_s09", {"params": params})
  assert metadata.time_index == 0
  for module, leaves in params.items():
    for name, value in leaves.items():
      np.testing.assert_array_equal(restored["params"][module][name], value)
  (tmp_path / "t044_s09").write_bytes(b"")
  assert checkpoints.resolve("t044_s09") == "t044_s09"


@pytest.mark.parametrize(
    "case", ["missing", "glob", "checkpoint", "name", "index", "output"])
def test_bad_inputs_exit_with_one_line(inputs, case):
  args = {"checkpoint": PREFIX, "input": DEMO,
          "output": inputs / "never.npz"}
  if case == "missing":
    args["input"] = inputs / "absent.dump"
  elif case == "glob":
    args["input"] = inputs / "*.xyz"
  elif case == "checkpoint":
    args["checkpoint"] = inputs / "lammps" / "demo.dump"
  elif case == "name":
    args["checkpoint"] = "t044_s10"
  elif case == "output":
    args["output"] = "/proc/nope/x.npz"
  result = _cli(*[f"--{k}={v}" for k, v in args.items()],
                *(["--time_index=10"] if case == "index" else []))
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ")
  assert [l for l in result.stderr.splitlines()
          if l.startswith("error:")] == [last]
  if case == "name":
    assert last.endswith("no such checkpoint (bundled ones, usable by name: "
                         "t044_s09)")
  if case == "output":
    assert last == ("error: cannot write to /proc/nope/x.npz: No such file or "
                    "directory")
  assert not (inputs / "never.npz").exists()


class _Unconvertible:
  """A value `np.savez` fails on when it reaches it: a write cut short."""

  def __array__(self, *args, **kwargs):
    raise RuntimeError("cut short")


def test_npz_output_appears_whole(tmp_path):
  """A write that fails after its first array leaves the previous file."""
  path = tmp_path / "out.npz"
  apply.save_npz(str(path), {"predictions": np.ones(3)})
  with pytest.raises(RuntimeError, match="cut short"):
    apply.save_npz(str(path), {"predictions": np.zeros(3),
                               "types": _Unconvertible()})
  with np.load(path) as z:
    np.testing.assert_array_equal(z["predictions"], np.ones(3))
  assert os.listdir(tmp_path) == ["out.npz"]


def _random_snapshot(n, seed):
  rng = np.random.default_rng(seed)
  box = np.full(3, (n / 1.2) ** (1 / 3))
  return data.Snapshot(rng.uniform(0, box, (n, 3)),
                       (rng.uniform(size=n) < 0.2).astype(np.int32), box, None)


def test_batches_and_standardisation(tmp_path):
  """Mixed sizes batched with padding equal one-by-one predictions, and
  standardised checkpoints are brought back to target units."""
  params, metadata = checkpoints.load_params("t044_s09")
  scaled = tmp_path / "scaled.npz"
  checkpoints.save(str(scaled), {"params": params},
                   dataclasses.replace(metadata, target_mean=1.5,
                                       target_std=2.0))
  predict_fn, _ = apply.load_model("t044_s09")
  scaled_fn, _ = apply.load_model(str(scaled))
  snapshots = [_random_snapshot(n, seed)
               for seed, n in enumerate((300, 250, 300, 300))]
  batched = apply.predict_snapshots(predict_fn, snapshots, batch_size=2)
  single = apply.predict_snapshots(predict_fn, snapshots, batch_size=1)
  for b, s, snapshot in zip(batched, single, snapshots):
    assert b.shape == snapshot.types.shape
    np.testing.assert_allclose(b, s, atol=1e-5)
  rescaled = apply.predict_snapshots(scaled_fn, snapshots[:1])[0]
  np.testing.assert_allclose(rescaled, 2.0 * single[0] + 1.5, atol=1e-5)


def test_edge_chunks_give_the_same_predictions(demo, expected):
  """The bounded-memory forward (a large-system option) on the published
  network gives the default path's predictions."""
  predict_fn, _ = apply.load_model("t044_s09", edge_chunk_size=5000)
  chunked = apply.predict_snapshots(predict_fn, [demo])[0]
  np.testing.assert_allclose(chunked, expected, atol=1e-5)


def test_joint_checkpoint_writes_a_column_per_time_index(tmp_path):
  """A joint checkpoint's predictions [N, K] (each index's target scale
  undone) and per-index Pearson in the npz, one `propensity_t{index}`
  column per index in a dump; `--time_index` does not apply to it."""
  indices = (0, 4, 9)
  checkpoint = tmp_path / "joint.npz"
  make_random_checkpoint(checkpoint, time_indices=indices,
                         target_mean=(0.1, 0.2, 0.3),
                         target_std=(0.5, 1.0, 2.0))
  path = str(tmp_path / "aggregated-000.pickle")
  data.write_system(path, synthetic_system(5))
  predict_fn, metadata = apply.load_model(str(checkpoint))
  snapshot = data.to_snapshot(data.load_system(path), indices)
  (expected,) = apply.predict_snapshots(predict_fn, [snapshot])
  assert metadata.time_indices == indices and expected.shape == (216, 3)
  a = snapshot.types == 0

  out = tmp_path / "joint_out.npz"
  result = _cli(f"--checkpoint={checkpoint}", f"--input={path}",
                f"--output={out}")
  assert result.returncode == 0, result.stderr
  with np.load(out) as z:
    np.testing.assert_array_equal(z["time_indices"], indices)
    np.testing.assert_allclose(z["predictions"], expected, atol=1e-5)
    np.testing.assert_array_equal(z["targets"], snapshot.targets)
    for k, index in enumerate(indices):
      r = metrics.pearson(expected[a, k], snapshot.targets[a, k])
      assert z["pearson_a"][k] == pytest.approx(r, abs=1e-5)
      assert f"time index {index}: Pearson r over 1 frame(s)" in result.stdout

  dump = tmp_path / "joint_out.dump"
  result = _cli(f"--checkpoint={checkpoint}", f"--input={path}",
                f"--output={dump}", "--format=lammps")
  assert result.returncode == 0, result.stderr
  (frame,) = lammps_io.read_dump(str(dump))
  assert list(frame.extra) == ["propensity_t0", "propensity_t4",
                               "propensity_t9"]
  for k, index in enumerate(indices):
    np.testing.assert_allclose(frame.extra[f"propensity_t{index}"],
                               expected[:, k], atol=1e-5)

  result = _cli(f"--checkpoint={checkpoint}", f"--input={path}",
                f"--output={out}", "--time_index=4")
  assert result.returncode != 0 and "leave it unset" in result.stderr
  with pytest.raises(data.DataError, match=r"predicts time indices \(0, 4, "
                     r"9\) only"):
    apply.at_time_index([expected], metadata, 5)
  np.testing.assert_array_equal(
      apply.at_time_index([expected], metadata, 9)[0], expected[:, 2])


def test_refuses_checkpoint_of_another_network(tmp_path):
  params, metadata = checkpoints.load_params("t044_s09")
  other = dataclasses.replace(metadata.model, shared_weights=False)
  path = tmp_path / "other.npz"
  checkpoints.save(str(path), {"params": params},
                   dataclasses.replace(metadata, model=other))
  with pytest.raises(checkpoints.CheckpointError, match="do not fit"):
    apply.load_model(str(path))
