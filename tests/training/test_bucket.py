"""A run whose workdir and data are in a bucket: the GCS emulator (and
moto's S3) on loopback, started by the tests (conftest.py). Training is
killed and resumed there bit for bit; checkpoints, metrics, TensorBoard
events and the report land in the bucket; apply reads its checkpoint and
inputs from it; a damaged checkpoint there is set aside; the lock is an
object; nothing is written to a local folder named after the scheme."""

import json
import logging as std_logging
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from glassy_jax.formats import storage
from glassy_jax.inference import apply
from glassy_jax.network import model_config
from glassy_jax.training import checkpoints
from glassy_jax.training import metric_writers
from glassy_jax.training import workdir_lock
from conftest import REPO, read_scalars, truncate_checkpoint


def _upload(local_directory, url):
  """Copies a local folder tree to `url`."""
  for root, _, names in os.walk(local_directory):
    for name in names:
      relative = os.path.relpath(os.path.join(root, name), local_directory)
      with open(os.path.join(root, name), "rb") as f:
        storage.write_bytes(storage.join(url, *relative.split(os.sep)),
                            f.read())


def _args(data, workdir, steps):
  return ["--config=configs/bapst.py:test", f"--config.data.directory={data}",
          "--config.data.time_index=3", f"--config.train.num_steps={steps}",
          "--config.train.checkpoint_every=4", "--config.train.eval_every=8",
          "--config.train.log_every=2", f"--workdir={workdir}"]


def _train(*args, **kwargs):
  return subprocess.Popen([sys.executable, "run_training.py", *args],
                          cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, **kwargs)


def _finish(process):
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  return stderr


def test_training_in_a_bucket_killed_and_resumed(synthetic_dataset, gcs_dir,
                                                tmp_path):
  """Data and workdir in the bucket: SIGKILLed after step 8's checkpoint,
  resumed, it ends bit-identical to a clean local run; metrics, events,
  report and checkpoints are in the bucket, and apply reads from it."""
  steps, data, workdir = 24, f"{gcs_dir}/data", f"{gcs_dir}/run"
  _upload(synthetic_dataset, data)
  clean = _train(*_args(synthetic_dataset, tmp_path / "clean", steps))
  killed = _train(*_args(data, workdir, steps))
  watched = f"{workdir}/checkpoints"  # As a reader beside the trainer.
  deadline = time.time() + 240
  while max(checkpoints.complete_steps(watched), default=-1) < 8:
    assert killed.poll() is None, killed.communicate()[1][-3000:]
    assert time.time() < deadline
    time.sleep(0.2)
  killed.send_signal(signal.SIGKILL)
  killed.wait()
  assert checkpoints.complete_steps(watched)[-1] < steps
  assert storage.exists(f"{workdir}/.lock")  # Left by SIGKILL ...
  _finish(clean)
  stderr = _finish(_train(*_args(data, workdir, steps)))
  assert "taking over the lock object" in stderr  # ... taken over (same host).
  assert "where no file lock exists" in stderr  # The log says what guards it.
  assert not storage.exists(f"{workdir}/.lock")  # Released.

  a, _ = checkpoints.load(str(tmp_path / "clean" / "checkpoints"))
  b, saved = checkpoints.load(watched)  # The newest step.
  assert saved.step == steps and a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  # Metrics: every step once, in order, as the clean run logged them.
  with storage.open_file(f"{workdir}/metrics.jsonl", "r") as f:
    records = [json.loads(line) for line in f]
  with open(tmp_path / "clean" / "metrics.jsonl") as f:
    expected = [json.loads(line) for line in f]
  assert [(r["split"], r["step"]) for r in records] == [
      (r["split"], r["step"]) for r in expected]
  assert [r["loss"] for r in records if r["split"] == "train"] == [
      r["loss"] for r in expected if r["split"] == "train"]
  # TensorBoard events in the bucket: the killed run's and the resumed one's.
  scalars = read_scalars(workdir)
  assert {s for s, _ in scalars["train/loss"]} == set(range(2, steps + 1, 2))
  assert storage.isfile(f"{workdir}/report.md")
  assert storage.isfile(f"{workdir}/checkpoints/best.npz")

  # apply reads the checkpoint and a dataset file from the bucket, and
  # writes its output there.
  predict, metadata = apply.load_model(f"{workdir}/checkpoints/best.npz")
  (frame,) = apply.read_frames(f"{data}/test/aggregated-000.pickle", 3)
  (local_frame,) = apply.read_frames(
      os.path.join(synthetic_dataset, "test", "aggregated-000.pickle"), 3)
  np.testing.assert_array_equal(frame.snapshot.positions,
                                local_frame.snapshot.positions)
  (prediction,) = apply.predict_snapshots(predict, [frame.snapshot],
                                          inputs=metadata.input_spec())
  assert np.all(np.isfinite(prediction))
  apply.save_npz(f"{gcs_dir}/predictions.npz", {"propensity": prediction})
  assert storage.isfile(f"{gcs_dir}/predictions.npz")
  assert not os.path.exists(os.path.join(REPO, "gs:"))  # Never a local gs:/.


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_train_into_the_bucket_and_stop_on_preemption(
    synthetic_dataset, gcs_dir):
  """Multi-host on CPU: two processes read the bucket's data and save
  checkpoints there together (orbax); process 0 writes metrics and the
  report. SIGTERM to process 1 alone (a preempted host): both stop at the
  same step, and that step is saved."""
  data, workdir = f"{gcs_dir}/data", f"{gcs_dir}/run"
  _upload(synthetic_dataset, data)
  address = f"127.0.0.1:{_free_port()}"
  processes = [_train(
      *_args(data, workdir, 100000), "--config.data.max_train_files=0",
      "--config.data.max_test_files=0", "--config.distributed.enabled=True",
      f"--config.distributed.coordinator_address={address}",
      "--config.distributed.num_processes=2",
      f"--config.distributed.process_id={p}") for p in range(2)]
  try:
    deadline = time.time() + 240
    while not storage.exists(f"{workdir}/metrics.jsonl"):  # After step 2.
      assert all(p.poll() is None for p in processes)
      assert time.time() < deadline
      time.sleep(0.2)
    processes[1].send_signal(signal.SIGTERM)
    logs = [_finish(process) for process in processes]
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
  assert "received signal 15" in logs[1]
  with storage.open_file(f"{workdir}/metrics.jsonl", "r") as f:
    records = [json.loads(line) for line in f]
  train_steps = [r["step"] for r in records if r["split"] == "train"]
  assert train_steps == list(range(2, train_steps[-1] + 1, 2))  # Once each.
  manager = checkpoints.CheckpointManager(f"{workdir}/checkpoints")
  assert manager.steps()[0] == 0 and manager.steps()[-1] == train_steps[-1]
  assert f"saved step {train_steps[-1]}, stopping" in logs[0]
  assert storage.isfile(f"{workdir}/report.md")


def test_damaged_checkpoint_in_the_bucket_is_set_aside(gcs_dir):
  manager = checkpoints.CheckpointManager(gcs_dir, keep=2)
  template = {"w": np.ones(3, np.float32)}
  metadata = checkpoints.CheckpointMetadata(model=model_config.ModelConfig())
  for step in (1, 2, 3):
    manager.save(step, {"w": np.full(3, step, np.float32)}, metadata)
  manager.wait()
  assert manager.steps() == [2, 3]  # keep=2
  truncate_checkpoint(manager.latest_path())
  tree, _, path = manager.restore_latest(template)
  assert path == f"{gcs_dir}/ckpt_000000002"
  np.testing.assert_array_equal(tree["w"], 2)
  assert storage.isdir(f"{gcs_dir}/ckpt_000000003.damaged")
  assert manager.steps() == [2]
  manager.close()
  with pytest.raises(checkpoints.CheckpointError, match=r"\['w'\] has shape"):
    checkpoints.restore(path, {"w": np.ones(4, np.float32)})


def test_lock_object_refuses_a_second_trainer(gcs_dir, caplog):
  caplog.set_level(std_logging.INFO)
  with workdir_lock.hold(gcs_dir):
    assert "where no file lock exists" in caplog.text
    with pytest.raises(workdir_lock.WorkdirLocked) as refused:
      with workdir_lock.hold(gcs_dir):
        pass
    assert (f"(host {socket.gethostname()}, pid {os.getpid()}, since "
            in str(refused.value))
    assert str(refused.value).endswith(
        f"(if that run is gone, delete {gcs_dir}/.lock)")
  assert not storage.exists(f"{gcs_dir}/.lock")
  # Another host's lock object is never taken over.
  storage.write_bytes(f"{gcs_dir}/.lock", json.dumps(
      {"host": "elsewhere", "pid": 1}).encode())
  with pytest.raises(workdir_lock.WorkdirLocked, match="host elsewhere"):
    with workdir_lock.hold(gcs_dir):
      pass


@pytest.mark.parametrize("store", ["gcs", "s3"])
def test_metric_writers_rewrite_whole_objects(store, request):
  """No append on object stores: records and events rewrite their object,
  and a resumed run's `drop_after` cuts the records past its step."""
  if store == "gcs":
    workdir = request.getfixturevalue("gcs_dir")
  else:
    request.getfixturevalue("s3_emulator")
    workdir = "s3://glassy-test/metric_writers"
  with metric_writers.create_default_writer(workdir, True) as writer:
    for step in (1, 2, 3):
      writer.write_scalars(step, "train", {"loss": float(step)})
  with metric_writers.create_default_writer(workdir, True) as writer:
    writer.drop_after(2)  # Resumed from step 2.
    writer.write_scalars(3, "train", {"loss": 30.0})
  with storage.open_file(f"{workdir}/metrics.jsonl", "r") as f:
    assert [(r["step"], r["loss"]) for r in map(json.loads, f)] == [
        (1, 1.0), (2, 2.0), (3, 30.0)]
  pytest.importorskip("tensorboardX")
  assert read_scalars(workdir)["train/loss"][-1] == (3, 30.0)
