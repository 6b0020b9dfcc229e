"""Metric writers: the metrics.jsonl format, fan-out, TensorBoard events."""

import json
import math
import os
import sys

import pytest

from glassy_jax.inference import plotting
from glassy_jax.training import metric_writers
from conftest import read_events
from conftest import read_scalars

TRAIN = {"loss": 0.5, "steps_per_s": 2.25, "nonfinite_steps": 0}
TEST = {"elapsed_s": 12.5, "pearson_a": 0.7, "pearson_a_std": 0.01,
        "pearson_b": float("nan")}




def test_jsonl_records_keep_the_format_of_train_py(tmp_path):
  """The lines train.py wrote before the writers existed
  (`json.dumps(record)` of {"step", "split", ...}), byte for byte."""
  path = tmp_path / "metrics.jsonl"
  writer = metric_writers.JsonlWriter(str(path))
  writer.write_scalars(10, "train", TRAIN)
  writer.write_scalars(10, "test", TEST)
  before = [{"step": 10, "split": "train", **TRAIN},
            dict(step=10, split="test", **TEST)]
  assert path.read_text() == "".join(json.dumps(r) + "\n" for r in before)
  records = plotting.read_metrics(str(tmp_path))
  assert records["train"][0]["loss"] == 0.5
  assert records["test"][0]["elapsed_s"] == 12.5
  assert math.isnan(records["test"][0]["pearson_b"])


def test_jsonl_record_is_one_write(tmp_path, monkeypatch):
  """A whole line per write call: a killed run leaves no half line."""
  writes = []
  real_write = os.write
  monkeypatch.setattr(os, "write", lambda fd, data: writes.append(data) or
                      real_write(fd, data))
  writer = metric_writers.JsonlWriter(str(tmp_path / "metrics.jsonl"))
  writer.write_scalars(1, "train", TRAIN)
  writer.write_scalars(2, "train", TRAIN)
  assert len(writes) == 2
  assert all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)


def test_jsonl_drop_after_keeps_records_up_to_the_step(tmp_path):
  path = tmp_path / "metrics.jsonl"
  writer = metric_writers.JsonlWriter(str(path))
  writer.drop_after(5)  # No file yet: nothing to do.
  assert not path.exists()
  for step in (10, 20, 30):
    writer.write_scalars(step, "train", TRAIN)
  writer.write_scalars(30, "test", TEST)
  writer.drop_after(20)
  assert [json.loads(l)["step"] for l in path.read_text().splitlines()] == [
      10, 20]
  assert os.listdir(tmp_path) == ["metrics.jsonl"]
  writer.write_scalars(30, "train", TRAIN)  # Appends after the rewrite.
  assert len(path.read_text().splitlines()) == 3


class _Recorder(metric_writers.MetricWriter):

  def __init__(self):
    self.calls = []

  def write_scalars(self, step, split, scalars):
    self.calls.append(("write", step, split, dict(scalars)))

  def drop_after(self, step):
    self.calls.append(("drop", step))

  def close(self):
    self.calls.append(("close",))


def test_multi_writer_fans_out():
  a, b = _Recorder(), _Recorder()
  with metric_writers.MultiWriter([a, b]) as writer:
    writer.drop_after(3)
    writer.write_scalars(4, "train", {"loss": 1.0})
  expected = [("drop", 3), ("write", 4, "train", {"loss": 1.0}), ("close",)]
  assert a.calls == expected and b.calls == expected


def test_tensorboard_writer_events_read_back(tmp_path):
  pytest.importorskip("tensorboardX")
  with metric_writers.TensorBoardWriter(str(tmp_path)) as writer:
    writer.write_scalars(1, "train", {"loss": 0.5, "nonfinite_steps": 0})
    writer.write_scalars(2, "train", {"loss": 0.25, "nonfinite_steps": 1})
    writer.write_scalars(2, "test", {"pearson_a": 0.7})
    # Flushed per call: readable while the run goes on (or is killed).
    assert read_scalars(str(tmp_path))["test/pearson_a"] == [
        (2, pytest.approx(0.7))]
  scalars = read_scalars(str(tmp_path))
  assert scalars == {"train/loss": [(1, 0.5), (2, 0.25)],
                     "train/nonfinite_steps": [(1, 0.0), (2, 1.0)],
                     "test/pearson_a": [(2, pytest.approx(0.7))]}


def test_default_writer_adds_tensorboard_when_installed(tmp_path):
  pytest.importorskip("tensorboardX")
  with metric_writers.create_default_writer(str(tmp_path), True) as writer:
    assert [type(w) for w in writer.writers] == [
        metric_writers.JsonlWriter, metric_writers.TensorBoardWriter]
    writer.write_scalars(1, "train", TRAIN)
  assert read_scalars(str(tmp_path))["train/loss"] == [(1, 0.5)]
  assert plotting.read_metrics(str(tmp_path))["train"][0]["loss"] == 0.5


def test_default_writer_without_tensorboardx_is_jsonl_only(tmp_path,
                                                           monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorboardX", None)  # Import fails.
  with metric_writers.create_default_writer(str(tmp_path), True) as writer:
    assert [type(w) for w in writer.writers] == [metric_writers.JsonlWriter]
    writer.write_scalars(1, "train", TRAIN)
  assert os.listdir(tmp_path) == ["metrics.jsonl"]


def test_disabled_writer_writes_nothing(tmp_path):
  """Processes other than 0."""
  with metric_writers.create_default_writer(str(tmp_path), False) as writer:
    writer.drop_after(0)
    writer.write_scalars(1, "train", TRAIN)
  assert not os.listdir(tmp_path)


def _killed_and_resumed(logdir):
  """A run logs steps 10-30 and dies; the one resumed from 20 redoes 30."""
  with metric_writers.create_default_writer(logdir, True) as writer:
    writer.drop_after(0)  # As train.py does at every start.
    for step in (10, 20, 30):
      writer.write_scalars(step, "train", {"loss": float(step)})
    writer.write_scalars(30, "test", {"pearson_a": 0.3})
  with metric_writers.create_default_writer(logdir, True) as writer:
    writer.drop_after(20)
    writer.write_scalars(30, "train", {"loss": 30.5})


def test_tensorboard_resume_marks_a_restart(tmp_path):
  event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")
  _killed_and_resumed(str(tmp_path))
  events = read_events(str(tmp_path))
  # Two files, the resumed run's read last; each opens with its version.
  assert [e.step for e in events] == [0, 1, 10, 20, 30, 30, 0, 21, 30]
  assert [e.step for e in events
          if e.session_log.status == event_pb2.SessionLog.START] == [1, 21]
  assert [r["loss"] for r in plotting.read_metrics(str(tmp_path))[
      "train"]] == [10.0, 20.0, 30.5]


def test_tensorboard_shows_what_metrics_jsonl_holds_after_resume(tmp_path):
  """Read by TensorBoard itself (its Python reader), where installed."""
  pytest.importorskip("tensorboardX")
  accumulator = pytest.importorskip(
      "tensorboard.backend.event_processing.plugin_event_accumulator")
  _killed_and_resumed(str(tmp_path))
  tensor_util = pytest.importorskip("tensorboard.util.tensor_util")
  loaded = accumulator.EventAccumulator(str(tmp_path))
  loaded.Reload()
  points = lambda tag: [
      (e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
      for e in loaded.Tensors(tag)]
  records = plotting.read_metrics(str(tmp_path))
  assert points("train/loss") == [(r["step"], r["loss"])
                                  for r in records["train"]]
  assert points("test/pearson_a") == [] and records["test"] == []
