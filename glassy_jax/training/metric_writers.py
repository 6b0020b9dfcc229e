"""Where training's scalars go: `metrics.jsonl` and, optionally, TensorBoard.

In the spirit of `clu.metric_writers`, cut to what training logs: one
`write_scalars(step, split, scalars)` per log or evaluation step. The
JSON-lines file is the record that `plotting.read_metrics` and the
benchmarks read; TensorBoard event files (with the `tensorboard` extra,
which brings tensorboardX) are for watching a run live:
`tensorboard --logdir WORKDIR`, or the folder above several workdirs to
compare them.

A workdir in a bucket (`gs://`, `s3://`: `glassy_jax.formats.storage`) holds the
same files. Object stores cannot append, so there each file is kept in
memory and its object rewritten whole at every record: an object appears
whole or not at all, so a killed run still leaves whole lines (and whole
events). The files stay small (a record per log step, kilobytes).
"""

import abc
import io
import json
import os
import time
from typing import Any, Mapping, Sequence

from absl import logging

from glassy_jax.formats import atomic
from glassy_jax.formats import storage

METRICS_FILE = "metrics.jsonl"


class MetricWriter(abc.ABC):
  """Writes the scalars of one split at one step; closes as a context."""

  @abc.abstractmethod
  def write_scalars(self, step: int, split: str,
                    scalars: Mapping[str, Any]) -> None:
    """`split` names the group ("train", "test") the scalars belong to."""

  def drop_after(self, step: int) -> None:
    """Forgets what was written after `step`, where this run starts (a
    killed run logged steps that the resumed one redoes); by default
    nothing to do."""
    del step

  def close(self) -> None:
    """Releases what the writer holds; by default nothing."""

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


class JsonlWriter(MetricWriter):
  """One JSON record per call, `{"step", "split", **scalars}`, a line each.

  Each record goes to the file in a single append (O_APPEND, one write), so
  a run killed at any point leaves whole lines only. The file is opened per
  record (records are few), so no handle outlives a `drop_after` rewrite.
  In a bucket, where nothing appends, the file is read once and each record
  rewrites the whole object.
  """

  def __init__(self, path: str):
    self.path = path
    self._object = None  # A URL's content so far (read when first needed).

  def write_scalars(self, step, split, scalars):
    line = json.dumps({"step": step, "split": split, **scalars}) + "\n"
    if storage.is_url(self.path):
      self._object = self._read() + line.encode()
      storage.write_bytes(self.path, self._object)
      return
    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
      data = line.encode()
      while data:  # Regular files take it whole; a short write goes on.
        data = data[os.write(fd, data):]
    finally:
      os.close(fd)

  def drop_after(self, step):
    """Rewrites the file without records past `step`, atomically: a kill
    midway leaves the old or the new file."""
    self._object = None
    if not storage.exists(self.path):
      return
    lines = [l for l in self._read().decode().splitlines(keepends=True)
             if l.strip()]
    kept = [l for l in lines if json.loads(l)["step"] <= step]
    if len(kept) < len(lines):
      with atomic.atomic_write(self.path, "w") as f:
        f.writelines(kept)
    self._object = "".join(kept).encode()

  def _read(self) -> bytes:
    if self._object is None:
      self._object = (storage.read_bytes(self.path)
                      if storage.exists(self.path) else b"")
    return self._object


class TensorBoardWriter(MetricWriter):
  """Scalars as TensorBoard events in `logdir`, tagged `split/name`.

  Needs tensorboardX (ImportError otherwise), whose synchronous
  `EventsWriter` writes and flushes one event per call, so TensorBoard sees
  a point as soon as it is logged and a killed run loses none. (Its
  `SummaryWriter` hands events to a thread through a queue that `flush()`
  does not wait for, in tensorboardX 2.6: points would arrive up to
  `flush_secs` late, and a SIGKILL would drop them.)

  `drop_after` writes TensorBoard's restart marker, a SessionLog START at
  the first step to redo. Its Python reader then discards the points it
  holds at that step or later, of every tag, as the JSONL file is truncated
  (it takes a run's first marker for its start: a new run writes one too,
  at step 1). Its data server ignores the marker, but where a tag's steps
  go back it discards that tag's points from the new step on, so the
  redone steps replace the killed run's there too (a tag not yet written
  again keeps its stale points until it is). Event files are named by
  their start time to the nanosecond, so the resumed run's file sorts, and
  is read, after the killed run's.
  """

  def __init__(self, logdir: str):
    # pylint: disable=g-import-not-at-top
    from tensorboardX import event_file_writer
    from tensorboardX.proto import event_pb2
    from tensorboardX.proto import summary_pb2
    self._event, self._summary = event_pb2.Event, summary_pb2.Summary
    self._start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
    if storage.is_url(logdir):
      _register_object_writer(storage.scheme(logdir))
    storage.makedirs(logdir)
    # The default name has whole seconds: a run started within the same
    # second would overwrite the file.
    self._file = event_file_writer.EventsWriter(
        storage.join(logdir, "events"), f".{time.time_ns()}")

  def write_scalars(self, step, split, scalars):
    summary = self._summary(value=[
        self._summary.Value(tag=f"{split}/{name}", simple_value=float(value))
        for name, value in scalars.items()])
    self._write(self._event(step=step, summary=summary))

  def drop_after(self, step):
    self._write(self._event(step=step + 1, session_log=self._start))

  def _write(self, event):
    event.wall_time = time.time()
    self._file.write_event(event)
    self._file.flush()

  def close(self):
    self._file.close()


class _ObjectRecordWriter:
  """tensorboardX's record writer for an object store (any
  `glassy_jax.formats.storage` URL): the event file in memory, its object rewritten
  whole at each flush (no append there). tensorboardX's own writer for gs://
  needs google-cloud-storage and uploads again from `__del__`, which hangs
  at exit when the store is gone; this one uploads only when asked."""

  def __init__(self, path: str):
    self.path, self._buffer, self._flushed = path, io.BytesIO(), -1

  def write(self, data: bytes) -> None:
    self._buffer.write(data)

  def flush(self) -> None:
    if self._buffer.tell() != self._flushed:
      storage.write_bytes(self.path, self._buffer.getvalue())
      self._flushed = self._buffer.tell()

  def close(self) -> None:
    self.flush()


class _ObjectWriterFactory:
  """What tensorboardX's `record_writer.register_writer_factory` takes."""

  def open(self, path: str) -> _ObjectRecordWriter:
    return _ObjectRecordWriter(path)

  def directory_check(self, path: str) -> None:
    storage.makedirs(path)


def _register_object_writer(scheme: str) -> None:
  """Event files whose path starts with `scheme:` go through storage."""
  # pylint: disable-next=g-import-not-at-top
  from tensorboardX import record_writer
  record_writer.register_writer_factory(scheme, _ObjectWriterFactory())


class MultiWriter(MetricWriter):
  """Fans every call out to `writers`; with none, writes nothing."""

  def __init__(self, writers: Sequence[MetricWriter]):
    self.writers = tuple(writers)

  def write_scalars(self, step, split, scalars):
    for writer in self.writers:
      writer.write_scalars(step, split, scalars)

  def drop_after(self, step):
    for writer in self.writers:
      writer.drop_after(step)

  def close(self):
    for writer in self.writers:
      writer.close()


def create_default_writer(workdir: str, enabled: bool) -> MultiWriter:
  """`WORKDIR/metrics.jsonl`, plus TensorBoard events in `workdir` when
  tensorboardX is installed; with `enabled` False (processes other than 0)
  a writer that writes nothing."""
  if not enabled:
    return MultiWriter([])
  writers = [JsonlWriter(storage.join(workdir, METRICS_FILE))]
  try:
    writers.append(TensorBoardWriter(workdir))
    logging.info("metrics to %s and TensorBoard events (tensorboard "
                 "--logdir %s)", writers[0].path, workdir)
  except ImportError:
    logging.info("metrics to %s (no tensorboardX: pip install -e "
                 "'.[tensorboard]' for TensorBoard events)", writers[0].path)
  return MultiWriter(writers)
