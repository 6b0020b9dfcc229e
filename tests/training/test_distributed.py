"""Multi-host training: 2 processes == 1 process with as many devices."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from glassy_jax.training import checkpoints
from conftest import REPO


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(directory, workdir, log, devices, *flags):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  return subprocess.Popen(
      [sys.executable, "run_training.py", "--config=configs/bapst.py:test",
       f"--config.data.directory={directory}", "--config.data.time_index=3",
       "--config.data.max_train_files=0", "--config.data.max_test_files=0",
       "--config.data.standardize_targets=True",
       "--config.train.num_steps=3", f"--workdir={workdir}", *flags],
      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log)


def _wait(processes, logs, timeout=300):
  try:
    for process in processes:
      process.wait(timeout=timeout)
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
  for process, log in zip(processes, logs):
    with open(log) as f:
      assert process.returncode == 0, f.read()[-3000:]


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_two_processes_equal_one_process_with_four_devices(synthetic_dataset,
                                                           tmp_path):
  """4 training graphs, global batch 4: both layouts use every graph every
  step, and augmentation is keyed by file index, so only the summation
  order differs. Adam's first updates are about lr * sign(g), so a gradient
  element near eps turns that rounding into an update difference of order
  lr: the default lr 1e-4 keeps it below 1e-5."""
  single, multi = str(tmp_path / "single"), str(tmp_path / "multi")
  log = str(tmp_path / "single.log")
  with open(log, "w") as f:
    _wait([_start(synthetic_dataset, single, f, 4)], [log])
  address = f"127.0.0.1:{_free_port()}"
  logs = [str(tmp_path / f"process{p}.log") for p in range(2)]
  processes = []
  for p, path in enumerate(logs):
    with open(path, "w") as f:
      processes.append(_start(
          synthetic_dataset, multi, f, 2,
          "--config.distributed.enabled=True",
          f"--config.distributed.coordinator_address={address}",
          "--config.distributed.num_processes=2",
          f"--config.distributed.process_id={p}"))
  _wait(processes, logs)

  def latest(workdir):
    return checkpoints.load(checkpoints.CheckpointManager(
        os.path.join(workdir, "checkpoints")).latest_path())

  (a, meta_a), (b, meta_b) = latest(single), latest(multi)
  assert meta_a.step == meta_b.step == 3
  np.testing.assert_allclose(meta_a.target_mean, meta_b.target_mean,
                             rtol=1e-5)
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_allclose(a[key], b[key], atol=1e-5, err_msg=key)
  start, _ = checkpoints.load(
      os.path.join(single, "checkpoints", "ckpt_000000000"))
  assert max(np.abs(a[k] - start[k]).max()
             for k in a if "params" in k) > 5e-5  # The steps did update.
  # Process 0 alone wrote the metrics: every record once, test metrics of
  # the whole split (one test file per process) as one process computes them.
  records_a, records_b = _records(single), _records(multi)
  assert [(r["split"], r["step"]) for r in records_b] == [
      (r["split"], r["step"]) for r in records_a]
  for key in ("pearson_a", "pooled_pearson_a", "l2_a", "pearson_b"):
    np.testing.assert_allclose(records_a[-1][key], records_b[-1][key],
                               rtol=1e-3, err_msg=key)
  assert os.path.exists(os.path.join(multi, "report.md"))
  with open(logs[1]) as f:
    assert "steps/s" not in f.read()  # Others log warnings only.
