"""Training: runs, resume, the program."""

import json
import signal
import time
import os
import subprocess
import sys

import numpy as np
import pytest

from glassy_jax.configs import bapst
from glassy_jax.configs import fast
from glassy_jax.configs import fast_all_times
from glassy_jax.formats import data
from glassy_jax.inference import apply
from glassy_jax.training import checkpoints
from glassy_jax.training import train
from conftest import REPO
from conftest import read_scalars


def _config(directory, **train_overrides):
  config = bapst.get_config("test")
  config.data.directory = directory
  config.data.time_index = 3
  config.optimizer.learning_rate = 1e-3
  config.train.update(train_overrides)
  return config


def _records(workdir, split):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r["split"] == split]


def test_short_training_run_learns(synthetic_dataset, tmp_path):
  workdir = str(tmp_path / "run")
  config = _config(synthetic_dataset, num_steps=60, eval_every=30,
                   log_every=10, checkpoint_every=30)
  final = train.train_and_evaluate(config, workdir)
  losses = [r["loss"] for r in _records(workdir, "train")]
  assert losses[-1] < 0.5 * losses[0], losses
  assert final["pearson_a"] > 0.5, final
  assert os.path.exists(os.path.join(workdir, "checkpoints", "best.npz"))
  params, metadata = checkpoints.load_params(
      os.path.join(workdir, "checkpoints", "best.npz"))
  assert metadata.time_index == 3 and len(params) == 11


def test_short_joint_training_run_scores_every_time_index(synthetic_dataset,
                                                         tmp_path):
  """A joint model's records hold each index's metrics as `KEY/t{index}`
  and their means under the plain keys; the best checkpoint is chosen by
  the mean and predicts one column per index."""
  workdir = str(tmp_path / "run")
  config = fast_all_times.get_config("test")
  config.data.update(directory=synthetic_dataset, time_indices=(0, 4, 9))
  config.model.decoder_sizes = (64, 64, 3)
  train.train_and_evaluate(config, workdir)
  records = _records(workdir, "test")
  assert [r["step"] for r in records] == [3, 6]
  for record in records:
    for key in ("pearson_a", "pooled_pearson_a", "l2_a", "pearson_b"):
      assert record[key] == pytest.approx(
          np.mean([record[f"{key}/t{index}"] for index in (0, 4, 9)]))
  best = os.path.join(workdir, "checkpoints", "best.npz")
  _, metadata = checkpoints.load_params(best)
  assert metadata.time_indices == (0, 4, 9)
  assert len(metadata.target_mean) == len(metadata.target_std) == 3
  assert metadata.best_metric == max(r["pearson_a"] for r in records)
  predict_fn, _ = apply.load_model(best)
  snapshot = data.to_snapshot(data.load_system(
      os.path.join(synthetic_dataset, "test", "aggregated-000.pickle")), None)
  (predictions,) = apply.predict_snapshots(predict_fn, [snapshot])
  assert predictions.shape == (len(snapshot.types), 3)


def test_time_budget_stops_evaluates_and_checkpoints(synthetic_dataset,
                                                    tmp_path):
  workdir = str(tmp_path / "run")
  config = _config(synthetic_dataset, num_steps=1000, eval_every=500,
                   log_every=500, checkpoint_every=500, time_budget_s=1e-6)
  final = train.train_and_evaluate(config, workdir)
  (record,) = _records(workdir, "test")
  assert record["step"] == 1 and record["elapsed_s"] > 0
  assert final["pearson_a"] == record["pearson_a"]
  manager = checkpoints.CheckpointManager(
      os.path.join(workdir, "checkpoints"), 3)
  assert manager.steps()[-1] == 1


def test_fast_recipe_learns_the_demo_data(tmp_path):
  """The recipe of configs/fast.py, cut to one message-passing step of width
  32 and two demo graphs a step (under a minute): after 50 steps a held-out
  demo graph's propensity is predicted at r > 0.3, where DeepMind's recipe
  is still at ~0 after hundreds of steps (BUILD_NOTES.md, "Learning
  speed")."""
  config = fast.get_config("demo")
  config.model.update(num_steps=1, mlp_sizes=(32, 32))
  config.data.update(max_train_files=2, max_test_files=1)
  config.optimizer.update(learning_rate=1e-2, warmup_steps=5)
  config.train.update(num_steps=50, eval_every=50, log_every=10,
                      checkpoint_every=50)
  final = train.train_and_evaluate(config, str(tmp_path))
  assert final["pearson_a"] > 0.3, final


def test_resumed_run_ends_bit_identical(synthetic_dataset, tmp_path):
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train.train_and_evaluate(_config(synthetic_dataset, num_steps=8), straight)
  train.train_and_evaluate(_config(synthetic_dataset, num_steps=5), resumed)
  train.train_and_evaluate(_config(synthetic_dataset, num_steps=8), resumed)
  manager = lambda d: checkpoints.CheckpointManager(  # pylint: disable=g-long-lambda
      os.path.join(d, "checkpoints"))
  a, _ = checkpoints.load(manager(straight).latest_path())
  b, _ = checkpoints.load(manager(resumed).latest_path())
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _run_training(*args):
  return subprocess.run(
      [sys.executable, "run_training.py", *args], cwd=REPO, text=True,
      capture_output=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_cli_trains_and_reports(synthetic_dataset, tmp_path):
  result = _run_training("--config=configs/bapst.py:test",
                         f"--config.data.directory={synthetic_dataset}",
                         "--config.optimizer.learning_rate=1e-5",
                         f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "steps/s" in result.stderr and "ETA" in result.stderr
  assert "saved to" in result.stderr  # The run's own checkpoint line ...
  assert "checkpoint_manager.py" not in result.stderr  # ... not orbax's.
  with open(tmp_path / "report.md") as f:
    assert "pearson_a" in f.read()


@pytest.mark.parametrize("flag, message", [
    ("--config.optimizer.learning_rat=1e-5", "learning_rat"),
    ("--config.data.time_index=12", "time index 12 out of range"),
    ("--config.data.time_indices=(0,12)",
     "data.time_indices must be empty or 2 or more distinct indices in 0..9"),
    ("--config.data.directory=/nonexistent", "no dataset files in"),
])
def test_cli_bad_input_is_one_line(synthetic_dataset, tmp_path, flag,
                                   message):
  args = ["--config=configs/bapst.py:test", f"--workdir={tmp_path}"]
  if "directory" not in flag:
    args.append(f"--config.data.directory={synthetic_dataset}")
  result = _run_training(*args, flag)
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr


def test_cli_unwritable_workdir_is_one_line(synthetic_dataset):
  result = _run_training("--config=configs/bapst.py:test",
                         f"--config.data.directory={synthetic_dataset}",
                         "--workdir=/proc/nope")
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  assert [l for l in result.stderr.splitlines() if l.startswith("error:")] == [
      "error: cannot write to /proc/nope: No such file or directory"]


def _train_cli_args(directory, workdir, steps):
  return ["--config=configs/bapst.py:test",
          f"--config.data.directory={directory}", "--config.data.time_index=3",
          f"--config.train.num_steps={steps}",
          "--config.train.checkpoint_every=4", "--config.train.eval_every=100",
          f"--workdir={workdir}"]


def test_sigkill_then_resume_is_bit_identical(synthetic_dataset, tmp_path):
  """A run killed mid-training resumes and ends exactly like a clean run."""
  steps = 40
  clean, killed = tmp_path / "clean", tmp_path / "killed"
  assert _run_training(*_train_cli_args(synthetic_dataset, clean,
                                        steps)).returncode == 0
  process = subprocess.Popen(
      [sys.executable, "run_training.py",
       *_train_cli_args(synthetic_dataset, killed, steps)],
      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  # Watched as a reader beside a running trainer would (never an orbax
  # manager, whose listing races with the trainer's keep-N deletions).
  watched = str(killed / "checkpoints")
  deadline = time.time() + 240
  while max(checkpoints.complete_steps(watched), default=-1) < 8:
    assert process.poll() is None and time.time() < deadline
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert checkpoints.complete_steps(watched)[-1] < steps
  assert _run_training(*_train_cli_args(synthetic_dataset, killed,
                                        steps)).returncode == 0
  a, _ = checkpoints.load(str(clean / "checkpoints"))  # The newest step.
  b, _ = checkpoints.load(watched)
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  steps_logged = [r["step"] for r in _records(str(killed), "train")]
  assert steps_logged == sorted(set(steps_logged))


def test_sigterm_saves_a_checkpoint(synthetic_dataset, tmp_path):
  process = subprocess.Popen(
      [sys.executable, "run_training.py",
       *_train_cli_args(synthetic_dataset, tmp_path, 100000)],
      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while not (tmp_path / "metrics.jsonl").exists():  # Written after step 1.
    assert process.poll() is None and time.time() < deadline
    time.sleep(0.05)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr[-2000:]
  assert "received signal 15" in stderr
  manager = checkpoints.CheckpointManager(str(tmp_path / "checkpoints"))
  last = _records(str(tmp_path), "train")[-1]["step"]
  assert manager.steps()[-1] == last


def test_divergence_rolls_back_then_stops(synthetic_dataset, tmp_path):
  config = _config(synthetic_dataset, num_steps=60, log_every=2,
                   checkpoint_every=2, max_nonfinite_steps=0,
                   max_rollbacks=2)
  config.optimizer.learning_rate = 1e30  # Overflows within a few steps.
  with pytest.raises(train.TrainingDiverged, match="after 2 rollbacks"):
    train.train_and_evaluate(config, str(tmp_path))
  for key, value in checkpoints.load(checkpoints.CheckpointManager(
      str(tmp_path / "checkpoints")).latest_path())[0].items():
    assert np.all(np.isfinite(value)), key


def test_training_writes_tensorboard_events(synthetic_dataset, tmp_path):
  """With tensorboardX installed, the records of metrics.jsonl also reach
  TensorBoard, tagged split/name."""
  pytest.importorskip("tensorboardX")
  # pylint: disable-next=g-import-not-at-top
  workdir = str(tmp_path)
  train.train_and_evaluate(_config(synthetic_dataset, num_steps=4,
                                   log_every=2, eval_every=4,
                                   checkpoint_every=4), workdir)
  scalars = read_scalars(workdir)
  assert scalars["train/loss"] == [
      (r["step"], pytest.approx(r["loss"], rel=1e-6))
      for r in _records(workdir, "train")]
  assert [s for s, _ in scalars["train/loss"]] == [2, 4]
  (test,) = _records(workdir, "test")
  assert scalars["test/pearson_a"] == [
      (4, pytest.approx(test["pearson_a"], rel=1e-6))]
  assert "test/elapsed_s" in scalars
