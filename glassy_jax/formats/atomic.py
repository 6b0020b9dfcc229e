"""Files that appear whole or not at all.

Every file this package writes (systems, checkpoints, dumps, reports) goes to
a temporary name in the same folder and is renamed into place, so a run
killed at any instant leaves the previous file or the new one, never half
of one. Files get the usual 0644-less-umask permissions (mkstemp's 0600
would hide shared datasets from other users). A file that cannot be written
raises `WriteError`, whose one-line message names it (not the temporary name
the failing call saw) and says why.

A URL (`gs://`, `s3://`, see `glassy_jax.formats.storage`) is written as one object
upload at the end of the `with` block: an object store shows an object whole
or not at all, so the same guarantee holds without a rename (which object
stores do not have).
"""

import contextlib
import io
import os
import tempfile
from typing import IO, Iterator, Optional

from glassy_jax.formats import storage


class WriteError(OSError):
  """`filename` cannot be written (one-line message for command lines)."""

  def __str__(self):
    return f"cannot write to {self.filename}: {self.strerror}"


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def write_error(path: str, error: OSError) -> WriteError:
  """`error`, told of `path`: the file the caller named (not a temporary
  one), in `WriteError`'s one-line form."""
  return WriteError(error.errno, error.strerror or str(error), path)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb",
                 newline: Optional[str] = None) -> Iterator[IO]:
  """`with atomic_write(path) as f:` writes `f`, then renames it to `path`.

  `newline` is `open`'s (the csv module wants ""). OSErrors of the folder,
  the temporary file or the rename are raised as `WriteError`.
  """
  if storage.is_url(path):
    with _object_write(str(path), mode, newline) as f:
      yield f
    return
  directory = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
  except OSError as e:
    raise write_error(path, e) from e
  try:
    encoding = None if "b" in mode else "utf-8"
    with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException as e:
    if os.path.exists(tmp):
      os.unlink(tmp)
    # Errors naming another file (one read while writing) stay as they are.
    if isinstance(e, OSError) and e.filename in (None, tmp):
      raise write_error(path, e) from e
    raise


@contextlib.contextmanager
def _object_write(path: str, mode: str, newline: Optional[str]
                  ) -> Iterator[IO]:
  """The object-store form: written to memory, uploaded whole at the end
  (nothing at all if the block raises)."""
  buffer = io.BytesIO()
  if "b" in mode:
    yield buffer
    data = buffer.getvalue()
  else:
    text = io.TextIOWrapper(buffer, encoding="utf-8", newline=newline)
    yield text
    text.flush()
    data = buffer.getvalue()
  try:
    storage.write_bytes(path, data)
  except storage.StorageError:
    raise
  except OSError as e:
    raise write_error(path, e) from e
