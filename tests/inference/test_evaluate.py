"""The evaluation tool: per-time-index metrics, tables and CLI errors."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.formats import layouts
from glassy_jax.inference import evaluate
from glassy_jax.physics import graphs
from glassy_jax.scoring import tables
from glassy_jax.training import checkpoints
from glassy_jax.training import input_pipeline
from conftest import PUBLISHED_CHECKPOINT, REPO, TEST_SMALL
from conftest import make_random_checkpoint
from conftest import write_synthetic_dataset



@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("evaluate")
  directory = write_synthetic_dataset(root / "data", num_train=0, num_test=2)
  files = layouts.list_files(directory, "test")
  network, params = make_random_checkpoint(root / "random.npz")
  return {"root": root, "data": directory, "files": files,
          "checkpoint": str(root / "random.npz"), "network": network,
          "params": params}


def _cli(*args):
  return subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.evaluate", *args],
      cwd=REPO, capture_output=True, text=True, check=False)


def test_rows_agree_with_numpy(setup):
  rows = evaluate.evaluate_checkpoint(setup["checkpoint"], setup["data"],
                                      "test", None, None)
  assert [r["time_index"] for r in rows] == list(range(10))
  assert all(set(r) == set(tables.COLUMNS) for r in rows)

  k = 4  # Recomputed from scratch: raw trajectories, unpadded graphs.
  per_a, per_b, pooled, errors = [], [], [], []
  for path in setup["files"]:
    system = data.load_system(path)
    start = np.asarray(system["positions"])
    target = np.mean([np.linalg.norm(p - start, axis=1)
                      for p in system["trajectory_target_positions"][k]], 0)
    graph = graphs.build_graph(data.to_snapshot(system, None))
    prediction = np.asarray(setup["network"].apply(setup["params"], None,
                                                   graph))
    is_a = system["types"] == 0
    per_a.append(np.corrcoef(prediction[is_a], target[is_a])[0, 1])
    per_b.append(np.corrcoef(prediction[~is_a], target[~is_a])[0, 1])
    pooled.append((prediction[is_a], target[is_a]))
    errors.append(prediction[is_a] - target[is_a])
  row = rows[k]
  np.testing.assert_allclose(row["pearson_a"], np.mean(per_a), atol=1e-4)
  np.testing.assert_allclose(row["pearson_a_std"], np.std(per_a), atol=1e-4)
  np.testing.assert_allclose(row["pearson_b"], np.mean(per_b), atol=1e-4)
  np.testing.assert_allclose(
      row["pooled_pearson_a"],
      np.corrcoef(*map(np.concatenate, zip(*pooled)))[0, 1], atol=1e-4)
  np.testing.assert_allclose(
      row["l1_a"], np.mean([np.abs(e).mean() for e in errors]), rtol=1e-4)
  np.testing.assert_allclose(
      row["l2_a"], np.mean([(e ** 2).mean() for e in errors]), rtol=1e-4)
  np.testing.assert_allclose(row["time"], system["time"][k])
  np.testing.assert_allclose(row["is_value"], 0.5)
  assert row["num_files"] == 2


def test_cli_prints_and_writes_tables(setup):
  prefix = setup["root"] / "out" / "table"
  result = _cli(f"--checkpoint={setup['checkpoint']}",
                f"--data={setup['data']}", "--time_indices=0,9",
                f"--output={prefix}")
  assert result.returncode == 0, result.stderr
  assert "| index | time | IS | Pearson A" in result.stdout
  with open(f"{prefix}.csv") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["time_index"]) for r in rows] == [0, 9]
  assert tuple(rows[0]) == tables.COLUMNS
  with open(f"{prefix}.md", encoding="utf-8") as f:
    assert len(f.read().strip().splitlines()) == 2 + 2 + 2  # Title, table.


def test_cli_reads_a_runs_step_directory(setup):
  """evaluate takes a run's orbax step directory as well as an `.npz`: the
  same network, the same table."""
  params, metadata = checkpoints.load_params(setup["checkpoint"])
  run = setup["root"] / "run_checkpoints"
  with checkpoints.CheckpointManager(str(run)) as manager:
    step = manager.save(3, {"params": params}, metadata)
  tables_by_form = []
  for checkpoint in (setup["checkpoint"], step):
    result = _cli(f"--checkpoint={checkpoint}", f"--data={setup['data']}",
                  "--time_indices=0")
    assert result.returncode == 0, result.stderr
    tables_by_form.append(result.stdout.split("| index |", 1)[1].replace(
        str(checkpoint), "CHECKPOINT"))  # The table names its checkpoint.
  assert tables_by_form[0] == tables_by_form[1]


@pytest.mark.parametrize("case",
                         ["directory", "checkpoint", "index", "output"])
def test_cli_errors_are_one_line(setup, case):
  args = {"checkpoint": setup["checkpoint"], "data": setup["data"]}
  if case == "directory":
    args["data"] = setup["root"] / "absent"
  elif case == "checkpoint":
    args["checkpoint"] = setup["files"][0]
  elif case == "index":
    args["time_indices"] = "0,10"
  else:
    args.update(time_indices="0", output="/proc/nope/t")
  result = _cli(*[f"--{k}={v}" for k, v in args.items()])
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert errors == [result.stderr.strip().splitlines()[-1]]
  if case == "output":
    assert errors == ["error: cannot write to /proc/nope/t.md: No such file "
                      "or directory"]


def test_published_checkpoint_on_deepmind_test_file(tmp_path):
  os.makedirs(tmp_path / "test")
  os.symlink(TEST_SMALL, tmp_path / "test" / "aggregated_small.pickle")
  rows = evaluate.evaluate_checkpoint(PUBLISHED_CHECKPOINT, str(tmp_path),
                                      "test", None, None)
  assert len(rows) == 10
  assert all(np.isfinite(r["pearson_a"]) and np.isfinite(r["time"])
             for r in rows)
  assert rows[0]["is_value"] == pytest.approx(0.9)
  assert rows[9]["is_value"] == pytest.approx(np.exp(-1))
  print("\n" + tables.markdown_table(rows))


def test_bundled_checkpoint_by_name_on_demo_data(tmp_path):
  """`--checkpoint=t044_s09` scores the shipped demo data: one row per
  index over the 4 test files; at its own index (0) r(A) is about 0.80."""
  prefix = tmp_path / "table"
  result = _cli("--checkpoint=t044_s09", f"--data={input_pipeline.DEMO_DATA}",
                "--time_indices=0,9", f"--output={prefix}")
  assert result.returncode == 0, result.stderr
  assert "| index | time | IS | Pearson A" in result.stdout
  with open(f"{prefix}.csv") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["time_index"]) for r in rows] == [0, 9]
  assert all(int(r["num_files"]) == 4 for r in rows)
  print(f"Pearson r (A) at index 0: {float(rows[0]['pearson_a']):.4f}")
  assert float(rows[0]["pearson_a"]) > 0.75


def test_cli_scores_several_temperatures_with_baselines(setup):
  """One block of rows per data directory, with the temperature its files
  record, and the baselines' rows (fitted on that directory's train/)."""
  directories = []
  for temperature in (0.44, 0.5):
    directory = write_synthetic_dataset(
        setup["root"] / f"T{temperature}", num_train=2, num_test=1)
    for path in layouts.list_files(directory, "test"):
      system = data.load_system(path)
      system["metadata"]["temperature"] = temperature
      data.write_system(path, system)
    directories.append(directory)
  prefix = setup["root"] / "temperatures"
  result = _cli(f"--checkpoint={setup['checkpoint']}",
                f"--data={','.join(directories)}", "--time_indices=0,5",
                "--baselines=density,radial_ridge", f"--output={prefix}")
  assert result.returncode == 0, result.stderr
  with open(f"{prefix}.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["model"], float(r["temperature"]), int(r["time_index"]))
          for r in rows] == [
              (model, temperature, index)
              for temperature in (0.44, 0.5)
              for model in (setup["checkpoint"], "density", "radial_ridge")
              for index in (0, 5)]
  assert all(np.isfinite(float(r["pearson_a"])) for r in rows)
  assert "| radial_ridge | T0.5 | 0.5 | 5 |" in result.stdout


def test_joint_checkpoint_is_scored_with_each_index_output(setup):
  """Column k of a joint model is scored against the targets of its k-th
  time index: the rows equal single-output scoring of that column."""
  path = setup["root"] / "joint.npz"
  network, params = make_random_checkpoint(path, time_indices=(2, 7))
  rows = evaluate.evaluate_checkpoint(str(path), setup["data"])
  assert [r["time_index"] for r in rows] == [2, 7]
  for column, k in enumerate((2, 7)):
    per_a = []
    for file in setup["files"]:
      system = data.load_system(file)
      predictions = np.asarray(network.apply(
          params, None, graphs.build_graph(data.to_snapshot(system, None))))
      assert predictions.shape == (len(system["types"]), 2)
      is_a = system["types"] == 0
      per_a.append(np.corrcoef(predictions[is_a, column],
                               data.system_targets(system, k)[is_a])[0, 1])
    np.testing.assert_allclose(rows[column]["pearson_a"], np.mean(per_a),
                               atol=1e-4)
  with pytest.raises(data.DataError, match=r"predicts time indices \(2, 7\)"):
    evaluate.evaluate_checkpoint(str(path), setup["data"], "test", [3])
