"""One trainer per workdir: a lock held for the whole run.

Two trainers on one workdir would write the same checkpoints and metrics.

* A local (or mounted) workdir: `WORKDIR/.lock`, an OS file lock (`filelock`:
  flock on Unix). The holder writes its host, pid and start time into the
  file, and a refusal names them. The OS drops the lock of a process that
  ends in any way (SIGKILL included), so no stale lock remains to clear.
  (flock on NFS is only as good as the NFS server's locking.)
* A workdir in a bucket (`gs://`, `s3://`) has no file lock. There the lock
  is the object `WORKDIR/.lock`, created only if absent: a generation
  precondition on GCS (`ifGenerationMatch=0`), `If-None-Match: *` on S3, so
  the store itself refuses a second creator, whichever host it runs on. The
  object holds the same host, pid and start time and is deleted when the
  run ends. A run killed with SIGKILL leaves it: a later run on the same
  host takes it over when that pid no longer runs; from another host the
  refusal says which object to delete.
"""

import contextlib
import json
import os
import signal
import socket
import time
from typing import Iterator

from absl import logging

from glassy_jax import errors
from glassy_jax.formats import atomic
from glassy_jax.formats import storage

LOCK_NAME = ".lock"


class WorkdirLocked(errors.UserError):
  """Another live trainer holds the workdir (one-line message)."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Exists, another user's.
    return True
  return True


def _identity() -> bytes:
  return json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                     "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode()


def _holder(path: str) -> dict:
  try:
    holder = json.loads(storage.read_bytes(path) or b"{}")
  except (OSError, ValueError):  # Being written, or damaged.
    return {}
  return holder if isinstance(holder, dict) else {}


def _refusal(workdir: str, holder: dict, hint: str = "") -> WorkdirLocked:
  since = f", since {holder['since']}" if holder.get("since") else ""
  return WorkdirLocked(
      f"{workdir}: a training run already uses this workdir (host "
      f"{holder.get('host') or '?'}, pid {holder.get('pid') or '?'}{since}); "
      f"stop it or choose another --workdir{hint}")


@contextlib.contextmanager
def hold(workdir: str, enabled: bool = True) -> Iterator[None]:
  """`with hold(workdir):` runs with the workdir's lock (a no-op when not
  `enabled`: multi-host processes other than 0 write nothing)."""
  if not enabled:
    yield
    return
  with (_object_lock(workdir) if storage.is_url(workdir)
        else _file_lock(workdir)):
    # SIGTERM before training handles it itself (data loading) must still
    # reach the lock's release.
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:
      signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
      yield
    finally:
      if previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _file_lock(workdir: str) -> Iterator[None]:
  """`filelock` on WORKDIR/.lock; the holder written into the file."""
  import filelock  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, LOCK_NAME)
  lock = filelock.FileLock(path, timeout=0)
  try:
    os.makedirs(workdir, exist_ok=True)
    lock.acquire()
  except filelock.Timeout:
    raise _refusal(workdir, _holder(path)) from None
  except OSError as e:  # An unwritable workdir: one line naming it.
    raise atomic.write_error(workdir, e) from None
  try:
    # Through another descriptor: flock belongs to filelock's, which stays
    # open (and locked) until release.
    with open(path, "r+b") as f:
      f.truncate()
      f.write(_identity())
    yield
  finally:
    with contextlib.suppress(OSError):
      with open(path, "r+b") as f:
        f.truncate()  # Nobody holds it now.
    lock.release()


@contextlib.contextmanager
def _object_lock(workdir: str) -> Iterator[None]:
  """The lock object WORKDIR/.lock, created only if absent."""
  storage.makedirs(workdir)  # The backend is there, or one line says so.
  path = storage.join(workdir, LOCK_NAME)
  try:
    taken = storage.create(path, _identity())
  except storage.StorageError:
    raise
  except OSError as e:
    raise atomic.write_error(workdir, e) from None
  if not taken:
    holder = _holder(path)
    pid = holder.get("pid")
    if not (holder.get("host") == socket.gethostname() and
            isinstance(pid, int) and not _alive(pid)):
      raise _refusal(workdir, holder,
                     f" (if that run is gone, delete {path})")
    logging.warning("%s: taking over the lock object of process %d, which "
                    "no longer runs", workdir, pid)
    with contextlib.suppress(FileNotFoundError):
      storage.remove(path)
    if not storage.create(path, _identity()):  # Another took it meanwhile.
      raise _refusal(workdir, _holder(path))
  logging.info("%s is in object storage, where no file lock exists: the "
               "lock object %s (created only if absent, by a generation "
               "precondition) keeps a second trainer out; it is deleted "
               "when this run ends", workdir, path)
  try:
    yield
  finally:
    holder = _holder(path)
    if (holder.get("pid"), holder.get("host")) == (os.getpid(),
                                                   socket.gethostname()):
      with contextlib.suppress(OSError):
        storage.remove(path)


def _exit_on_sigterm(signum, frame):
  del frame
  raise SystemExit(128 + signum)
