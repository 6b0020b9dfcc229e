"""One trainer per workdir: a lock file held for the whole run.

Two trainers on one workdir would write the same checkpoints and metrics.
The lock is `WORKDIR/.lock`, created exclusively and holding the owner's
host and pid; it is removed on every exit path that runs Python code. A
lock left by a process that no longer exists on this host (after SIGKILL
or a crash) is taken over; one held from another host cannot be checked
from here and is refused, naming its holder.
"""

import contextlib
import json
import os
import signal
import socket
from typing import Iterator

from absl import logging

from glassy_jax import errors
from glassy_jax.formats import atomic

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


def _take(path: str) -> bool:
  """Creates the lock file; False if it exists."""
  try:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    json.dump({"host": socket.gethostname(), "pid": os.getpid()}, f)
  return True


def _holder(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):  # Being written, or damaged.
    return {}


@contextlib.contextmanager
def hold(workdir: str, enabled: bool = True) -> Iterator[None]:
  """`with hold(workdir):` runs with the workdir's lock (a no-op when not
  `enabled`: multi-host processes other than 0 write nothing)."""
  if not enabled:
    yield
    return
  path = os.path.join(workdir, LOCK_NAME)
  try:
    os.makedirs(workdir, exist_ok=True)
    taken = _take(path)
  except OSError as e:  # An unwritable workdir: one line naming it.
    raise atomic.write_error(workdir, e) from None
  while not taken:
    holder = _holder(path)
    host, pid = holder.get("host"), holder.get("pid")
    if host == socket.gethostname() and isinstance(pid, int) and not _alive(
        pid):
      logging.warning("%s: taking over the lock of process %d, which no "
                      "longer runs", workdir, pid)
      with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
      taken = _take(path)
      continue
    raise WorkdirLocked(
        f"{workdir}: a training run already uses this workdir (host "
        f"{host or '?'}, pid {pid or '?'}); stop it or choose another "
        f"--workdir (remove {path} if that run is gone)")
  # SIGTERM before training handles it itself (data loading) must still
  # reach the `finally` below.
  previous = signal.getsignal(signal.SIGTERM)
  if previous == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
  try:
    yield
  finally:
    if previous == signal.SIG_DFL:
      signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError):
      if _holder(path).get("pid") == os.getpid():
        os.unlink(path)


def _exit_on_sigterm(signum, frame):
  del frame
  raise SystemExit(128 + signum)
