"""Faults lose nothing: damaged checkpoints, a second trainer, bad config
values, met as a user meets them."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from glassy_jax.configs import bapst
from glassy_jax.network import model_config
from glassy_jax.training import checkpoints
from glassy_jax.training import run_config
from glassy_jax.training import train
from glassy_jax.training import workdir_lock
from conftest import REPO, truncate_checkpoint


def _config(directory, **train_overrides):
  config = bapst.get_config("test")
  config.data.directory = directory
  config.optimizer.learning_rate = 1e-3
  config.train.update(train_overrides)
  return config


def _run_training(*args, **kwargs):
  return subprocess.run([sys.executable, "run_training.py", *args], cwd=REPO,
                        capture_output=True, text=True, **kwargs)


def test_resume_skips_a_truncated_newest_checkpoint(synthetic_dataset,
                                                     tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(_config(synthetic_dataset, num_steps=6,
                                   checkpoint_every=3, keep_checkpoints=3),
                           workdir)
  manager = checkpoints.CheckpointManager(os.path.join(workdir, "checkpoints"))
  assert manager.steps() == [0, 3, 6]
  newest = manager.latest_path()
  truncate_checkpoint(newest)
  # Resumed with more steps to go: from step 3, the damaged one kept.
  result = train.train_and_evaluate(
      _config(synthetic_dataset, num_steps=9, checkpoint_every=3), workdir)
  assert np.isfinite(result["pearson_a"])
  assert os.path.exists(newest + ".damaged")
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [r["step"] for r in map(json.loads, f) if r["split"] == "train"]
  assert 4 in steps and steps[-1] == 9


@pytest.mark.parametrize("damage", ["truncated", "nan", "dtype", "shape"])
def test_every_damaged_checkpoint_is_skipped_then_one_line(tmp_path, damage):
  manager = checkpoints.CheckpointManager(str(tmp_path), keep=3)
  template = {"w": np.ones(3, np.float32)}
  metadata = checkpoints.CheckpointMetadata(model=model_config.ModelConfig())
  manager.save(1, template, metadata)
  manager.save(2, {"truncated": template,
                   "nan": {"w": np.full(3, np.nan, np.float32)},
                   "dtype": {"w": np.ones(3, np.float64)},
                   "shape": {"w": np.ones(4, np.float32)}}[damage], metadata)
  manager.wait()
  if damage == "truncated":
    truncate_checkpoint(manager.latest_path())
  tree, _, path = manager.restore_latest(template)
  assert path.endswith("ckpt_000000001")
  np.testing.assert_array_equal(tree["w"], 1)
  assert tree["w"].dtype == np.float32
  assert os.path.isdir(os.path.join(tmp_path, "ckpt_000000002.damaged"))
  assert manager.steps() == [1]
  truncate_checkpoint(path)
  with pytest.raises(checkpoints.CheckpointError,
                     match="no readable checkpoint to resume from"):
    manager.restore_latest(template)
  manager.close()


def test_shape_and_dtype_mismatches_are_one_line(tmp_path):
  path = str(tmp_path / "a.npz")
  metadata = checkpoints.CheckpointMetadata(model=model_config.ModelConfig())
  checkpoints.save(path, {"w": np.ones(3, np.float32)}, metadata)
  with pytest.raises(checkpoints.CheckpointError, match=re.escape(
      "['w'] has shape (3,), the model expects (4,)")):
    checkpoints.restore(path, {"w": np.ones(4, np.float32)})
  with pytest.raises(checkpoints.CheckpointError, match=re.escape(
      "['w'] has dtype float32, the model expects float16")):
    checkpoints.restore(path, {"w": np.ones(3, np.float16)})


def test_second_trainer_on_a_workdir_refuses(synthetic_dataset, tmp_path):
  workdir = tmp_path / "run"
  args = ["--config=configs/bapst.py:test", f"--workdir={workdir}",
          f"--config.data.directory={synthetic_dataset}",
          "--config.train.num_steps=100000", "--config.train.eval_every=100000",
          "--config.train.checkpoint_every=100000"]
  first = subprocess.Popen([sys.executable, "run_training.py", *args],
                           cwd=REPO, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.time() + 120
    lock = workdir / workdir_lock.LOCK_NAME
    while not (lock.exists() and lock.read_text()):  # Holder written.
      assert time.time() < deadline and first.poll() is None
      time.sleep(0.2)
    second = _run_training(*args)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert re.fullmatch(
        re.escape(f"error: {workdir}: a training run already uses this "
                  f"workdir (host {socket.gethostname()}, pid {first.pid}, "
                  "since ") + r"[^)]+\); stop it or choose another --workdir",
        lines[-1]), lines[-1]
  finally:
    first.send_signal(signal.SIGTERM)
    first.wait(120)
  assert lock.read_text() == ""  # Released: nobody named.
  with workdir_lock.hold(str(workdir)):  # And free.
    pass


def test_lock_of_a_killed_trainer_does_not_block(tmp_path):
  """The OS drops a killed holder's file lock; its name left in the file
  does not block."""
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys; from glassy_jax.training import "
       "workdir_lock as w\nwith w.hold(sys.argv[1]):\n print(flush=True); "
       "sys.stdin.read()", str(tmp_path)],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  holder.stdout.readline()  # It holds the lock.
  with pytest.raises(workdir_lock.WorkdirLocked, match=f"pid {holder.pid}"):
    with workdir_lock.hold(str(tmp_path)):
      pass
  holder.kill()
  holder.wait()
  with workdir_lock.hold(str(tmp_path)):
    with open(tmp_path / workdir_lock.LOCK_NAME) as f:
      assert json.load(f)["pid"] == os.getpid()
  assert (tmp_path / workdir_lock.LOCK_NAME).read_text() == ""


def test_sigkill_during_a_checkpoint_write_keeps_the_previous(
    synthetic_dataset, tmp_path):
  workdir = tmp_path / "run"
  args = ["--config=configs/bapst.py:test", f"--workdir={workdir}",
          f"--config.data.directory={synthetic_dataset}",
          "--config.train.num_steps=100000", "--config.train.eval_every=100000",
          "--config.train.checkpoint_every=1", "--config.train.log_every=1"]
  proc = subprocess.Popen([sys.executable, "run_training.py", *args],
                          cwd=REPO, stderr=subprocess.DEVNULL)
  directory = workdir / "checkpoints"
  deadline = time.time() + 180
  # Killed while it writes a checkpoint a step.
  while not (directory.exists() and len(list(directory.glob("ckpt_*"))) >= 3):
    assert time.time() < deadline and proc.poll() is None
    time.sleep(0.05)
  proc.kill()
  proc.wait()
  manager = checkpoints.CheckpointManager(str(directory))
  for step in manager.steps():
    checkpoints.load(manager._path(step))  # Every one readable.


@pytest.mark.parametrize("override, line", [
    ("--config.data.cutoff=-1", "data.cutoff must be > 0, got -1.0"),
    ("--config.train.graphs_per_device=0",
     "train.graphs_per_device must be >= 1, got 0"),
    ("--config.optimizer.learning_rate=-0.001",
     "optimizer.learning_rate must be > 0, got -0.001"),
    ("--config.train.eval_every=0", "train.eval_every must be >= 1, got 0"),
    ("--config.optimizer.schedule=linear",
     "optimizer.schedule must be one of ('constant', 'step', 'cosine'), got "
     "'linear'"),
])
def test_bad_config_value_is_one_line_before_any_work(synthetic_dataset,
                                                      tmp_path, override,
                                                      line):
  workdir = tmp_path / "run"
  result = _run_training("--config=configs/bapst.py:test",
                         f"--workdir={workdir}",
                         f"--config.data.directory={synthetic_dataset}",
                         override)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == f"error: {line}"
  assert not workdir.exists()  # Nothing started.


def test_every_bad_value_gets_its_line():
  config = bapst.get_config()
  config.data.cutoff = 0.0
  config.train.log_every = 0
  config.train.keep_checkpoints = 0
  assert run_config.problems(config) == [
      "data.cutoff must be > 0, got 0.0",
      "train.log_every must be >= 1, got 0",
      "train.keep_checkpoints must be >= 1, got 0"]
  assert run_config.problems(bapst.get_config()) == []
