"""Files that appear whole or not at all.

Every file this package writes (systems, checkpoints, dumps, reports) goes to
a temporary name in the same folder and is renamed into place, so a run
killed at any instant leaves the previous file or the new one, never half
of one. Files get the usual 0644-less-umask permissions (mkstemp's 0600
would hide shared datasets from other users).
"""

import contextlib
import os
import tempfile
from typing import IO, Iterator


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb") -> Iterator[IO]:
  """`with atomic_write(path) as f:` writes `f`, then renames it to `path`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
  try:
    encoding = None if "b" in mode else "utf-8"
    with os.fdopen(fd, mode, encoding=encoding) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
