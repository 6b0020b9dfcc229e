"""The apply tool: checkpoints in, propensities out, for every input format."""

import os
import subprocess
import sys

import numpy as np
import pytest

from glassy_jax import apply
from glassy_jax import checkpoints
from glassy_jax import data
from glassy_jax import lammps_io
from glassy_jax import tf_checkpoint

from conftest import HAVE_PUBLISHED, KA4096, REPO
from conftest import PUBLISHED_CHECKPOINT as PREFIX

pytestmark = pytest.mark.skipif(
    not HAVE_PUBLISHED,
    reason="../shared/reference (DeepMind checkpoint, ka4096) is absent")


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "glassy_jax.apply", *args],
                        cwd=REPO, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def ka4096():
  with np.load(KA4096) as z:
    return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, ka4096):
  """ka4096 as a DeepMind pickle, a 2-frame LAMMPS dump and a data file."""
  root = tmp_path_factory.mktemp("apply")
  types = ka4096["types"].astype(np.int32)
  data.write_system(str(root / "aggregated_0.pickle"), {
      "positions": ka4096["positions"], "types": types, "box": ka4096["box"],
      "targets": [ka4096["targets_t0132"], ka4096["targets_t0435"]],
      "metadata": {"temperature": 0.44}})
  lammps = root / "lammps"
  frame = lammps_io.make_frame(ka4096["positions"], types, ka4096["box"],
                               unwrapped=False)
  # A translated copy: same structure, so the same predictions.
  shifted = frame._replace(timestep=1000, positions=frame.positions + 0.7)
  lammps_io.write_dump(str(lammps / "ka.dump"), [frame, shifted])
  rows = np.column_stack([np.arange(1, len(types) + 1), types + 1,
                          ka4096["positions"]])
  with open(lammps / "ka.data", "w") as f:
    f.write(f"ka4096\n\n{len(types)} atoms\n2 atom types\n\n")
    f.write("".join(f"0.0 {length!r} {axis}lo {axis}hi\n"
                    for length, axis in zip(ka4096["box"].tolist(), "xyz")))
    f.write("\nAtoms # atomic\n\n")
    np.savetxt(f, rows, fmt=["%d", "%d", "%.17g", "%.17g", "%.17g"])
  params, metadata = tf_checkpoint.load_bapst(PREFIX)
  checkpoints.save(str(root / "t044_s09.npz"), {"params": params}, metadata)
  return root


def test_deepmind_pickle_to_npz(inputs, ka4096):
  out = inputs / "pickle_out.npz"
  result = _cli(f"--checkpoint={PREFIX}",
                f"--input={inputs / 'aggregated_0.pickle'}", f"--output={out}")
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


def test_lammps_inputs_to_npz(inputs, ka4096):
  out = inputs / "lammps_out.npz"
  result = _cli(f"--checkpoint={inputs / 't044_s09.npz'}",
                f"--input={inputs / 'lammps' / 'ka.*'}", f"--output={out}",
                "--batch_size=2")
  assert result.returncode == 0, result.stderr
  with np.load(out) as z:
    assert z["predictions"].shape == (3, 4096)  # ka.data, then 2 dump frames.
    assert z["types"].shape == (3, 4096)
    assert "targets" not in z.files
    diff = np.abs(z["predictions"] - ka4096["reference_predictions"]).max()
  assert diff < 1e-4


def test_lammps_output_has_propensity(inputs, ka4096):
  out = inputs / "out.dump"
  result = _cli(f"--checkpoint={PREFIX}",
                f"--input={inputs / 'lammps' / 'ka.dump'}", f"--output={out}",
                "--format=lammps")
  assert result.returncode == 0, result.stderr
  frames = lammps_io.read_dump(str(out))
  assert [f.timestep for f in frames] == [0, 1000]
  for frame in frames:
    np.testing.assert_array_equal(frame.types, ka4096["types"])
    assert np.abs(frame.extra["propensity"]
                  - ka4096["reference_predictions"]).max() < 1e-4


@pytest.mark.parametrize("case", ["missing", "glob", "checkpoint", "index"])
def test_bad_inputs_exit_with_one_line(inputs, case):
  args = {"checkpoint": PREFIX, "input": inputs / "aggregated_0.pickle",
          "output": inputs / "never.npz"}
  if case == "missing":
    args["input"] = inputs / "absent.dump"
  elif case == "glob":
    args["input"] = inputs / "*.xyz"
  elif case == "checkpoint":
    args["checkpoint"] = inputs / "lammps" / "ka.dump"
  result = _cli(*[f"--{k}={v}" for k, v in args.items()],
                *(["--time_index=5"] if case == "index" else []))
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith("error: ")
  assert not (inputs / "never.npz").exists()


def _random_snapshot(n, seed):
  rng = np.random.default_rng(seed)
  box = np.full(3, (n / 1.2) ** (1 / 3))
  return data.Snapshot(rng.uniform(0, box, (n, 3)),
                       (rng.uniform(size=n) < 0.2).astype(np.int32), box, None)


def test_batches_and_standardisation(inputs, tmp_path):
  """Mixed sizes batched with padding equal one-by-one predictions, and
  standardised checkpoints are brought back to target units."""
  params, metadata = checkpoints.load_params(str(inputs / "t044_s09.npz"))
  scaled = tmp_path / "scaled.npz"
  checkpoints.save(str(scaled), {"params": params},
                   dict(metadata, target_mean=1.5, target_std=2.0))
  predict_fn, _ = apply.load_model(str(inputs / "t044_s09.npz"))
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


def test_edge_chunks_give_the_same_predictions(inputs, ka4096):
  """The bounded-memory forward (a large-system option) on the published
  network reproduces DeepMind's predictions as the default path does."""
  snapshot = data.Snapshot(ka4096["positions"], ka4096["types"],
                           ka4096["box"], None)
  predictions = {}
  for chunk in (0, 5000):
    predict_fn, _ = apply.load_model(str(inputs / "t044_s09.npz"),
                                     edge_chunk_size=chunk)
    predictions[chunk] = apply.predict_snapshots(predict_fn, [snapshot])[0]
  np.testing.assert_allclose(predictions[5000], predictions[0], atol=1e-5)
  np.testing.assert_allclose(predictions[5000],
                             ka4096["reference_predictions"], atol=1e-4)


def test_refuses_checkpoint_of_another_network(inputs, tmp_path):
  params, metadata = checkpoints.load_params(str(inputs / "t044_s09.npz"))
  other = dict(metadata["model_config"], shared_weights=False)
  path = tmp_path / "other.npz"
  checkpoints.save(str(path), {"params": params},
                   dict(metadata, model_config=other))
  with pytest.raises(checkpoints.CheckpointError, match="do not fit"):
    apply.load_model(str(path))
