"""Paths of every file a run reads or writes: local, or in a bucket.

A path is a local path or a URL (`gs://bucket/dir`, `s3://bucket/dir`).
Local paths stay plain `os` calls. URLs go through fsspec, with gcsfs or
s3fs from the `cloud` extra (`pip install 'glassy_jax[cloud]'`); a URL whose
backend is not installed, or of a scheme this package does not know, is one
line (`StorageError`) saying what to install. A URL is never taken for a
local path, so nothing is written to a folder named `gs:`.

Object stores are not file systems, and the functions here say so rather
than pretend:

* An object appears whole or not at all, so `write_bytes` is atomic there
  as the temporary-file-and-rename of `formats/atomic.py` is locally.
* There is no append (gcsfs silently truncates instead), so `open` refuses
  append modes on URLs; writers that grow a file rewrite the whole object.
* There is no rename (a copy and a delete; slow against the emulator), so
  `rename` is for rare moves only (a damaged checkpoint set aside).
* "Folders" exist only through the objects under them: `makedirs` is a
  no-op on URLs.
* `create` (write only if absent) is a generation precondition on GCS
  (`ifGenerationMatch=0`) and `If-None-Match: *` on S3: what the workdir
  lock stands on where no file lock exists.
"""

import contextlib
import fnmatch
import io
import os
import posixpath
import re
from typing import IO, Any, Iterator, List, Tuple

from glassy_jax import errors

# gcsfs >= 2025 otherwise asks a gRPC control API for each bucket's type
# (zonal or not) before every operation; this package uses ordinary buckets,
# and without the API (an emulator, no egress) each call waits 60 s. Must be
# set before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
try:
  # pylint: disable-next=g-import-not-at-top
  import fsspec.config
  # Folder listings are read fresh: orbax (through etils.epath) holds its
  # own gcsfs instance, whose cached listings would still show a checkpoint
  # set aside by this module's.
  for _name in ("gs", "gcs", "s3"):
    fsspec.config.conf.setdefault(_name, {}).setdefault(
        "use_listings_cache", False)
except ImportError:  # Local paths only; URLs then say what to install.
  pass

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Scheme -> (module that provides it, pip package).
BACKENDS = {"gs": ("gcsfs", "gcsfs"), "gcs": ("gcsfs", "gcsfs"),
            "s3": ("s3fs", "s3fs"), "s3a": ("s3fs", "s3fs"),
            "memory": ("fsspec", "fsspec")}
EXTRA = "pip install 'glassy_jax[cloud]'"


class StorageError(errors.UserError, OSError):
  """A path that cannot be used: unknown scheme, backend not installed, or
  an operation object stores do not have (one-line message)."""

  def __str__(self):
    return self.args[0] if self.args else ""


def scheme(path: Any) -> str:
  """'gs' for `gs://b/x`; '' for a local path (and for `file://`)."""
  match = _URL.match(str(path))
  if not match or match.group(1).lower() == "file":
    return ""
  return match.group(1).lower()


def is_url(path: Any) -> bool:
  """True for an object-store URL, False for a local path."""
  return bool(scheme(path))


def local(path: Any) -> str:
  """A local path as a string (`file://` stripped)."""
  path = os.fspath(path)
  return path[len("file://"):] if path.startswith("file://") else path


def filesystem(path: str) -> Tuple[Any, str]:
  """(fsspec file system, path within it) of URL `path`; `StorageError`
  naming the extra to install when its backend is missing."""
  name = scheme(path)
  if name not in BACKENDS:
    raise StorageError(
        f"{path}: unknown storage scheme {name}:// (this package reads and "
        "writes local paths, gs:// and s3://)")
  module, package = BACKENDS[name]
  try:
    # pylint: disable-next=g-import-not-at-top
    import fsspec
    __import__(module)
  except ImportError:
    raise StorageError(
        f"{path}: {name}:// paths need {package} (and fsspec): {EXTRA}"
    ) from None
  return fsspec.core.url_to_fs(path)


def join(path: str, *parts: str) -> str:
  """`os.path.join` for local paths, `/`-joined for URLs."""
  if is_url(path):
    return posixpath.join(path, *parts)
  return os.path.join(path, *parts)


def exists(path: str) -> bool:
  if not is_url(path):
    return os.path.exists(local(path))
  fs, inner = filesystem(path)
  return fs.exists(inner)


def isfile(path: str) -> bool:
  if not is_url(path):
    return os.path.isfile(local(path))
  fs, inner = filesystem(path)
  return fs.isfile(inner)


def isdir(path: str) -> bool:
  """A local folder, or a URL prefix that holds objects."""
  if not is_url(path):
    return os.path.isdir(local(path))
  fs, inner = filesystem(path)
  return fs.isdir(inner)


def listdir(path: str) -> List[str]:
  """Names (not paths) of the entries of folder `path`, sorted; [] when it
  does not exist."""
  if not is_url(path):
    path = local(path)
    return sorted(os.listdir(path)) if os.path.isdir(path) else []
  fs, inner = filesystem(path)
  try:
    entries = fs.ls(inner, detail=False, refresh=True)
  except FileNotFoundError:
    return []
  names = {posixpath.basename(e.rstrip("/")) for e in entries}
  return sorted(n for n in names if n)


def glob(pattern: str) -> List[str]:
  """Paths matching `pattern` (`*`, `?`, `[...]` in its last part), sorted."""
  if not is_url(pattern):
    # pylint: disable-next=g-import-not-at-top
    import glob as glob_lib
    return sorted(glob_lib.glob(local(pattern)))
  directory, name = posixpath.split(pattern)
  return [join(directory, n) for n in listdir(directory)
          if fnmatch.fnmatchcase(n, name)]


def makedirs(path: str) -> None:
  """Creates local folder `path` and its parents; nothing for a URL (a
  prefix exists once an object lies under it)."""
  if not is_url(path):
    os.makedirs(local(path), exist_ok=True)
  else:
    filesystem(path)  # The backend is there, or one line says so.


def read_bytes(path: str) -> bytes:
  with open_file(path, "rb") as f:
    return f.read()


def write_bytes(path: str, data: bytes) -> None:
  """Writes the whole of `path` at once: one object upload for a URL
  (atomic there); locally a plain write (`formats/atomic.py` is the
  atomic form)."""
  if not is_url(path):
    with open(local(path), "wb") as f:
      f.write(data)
    return
  fs, inner = filesystem(path)
  fs.pipe_file(inner, data)


def create(path: str, data: bytes) -> bool:
  """Writes `path` only if it does not exist; False if it does. Locally
  O_CREAT|O_EXCL; on GCS a generation precondition (ifGenerationMatch=0),
  on S3 If-None-Match: *: the store decides, so two hosts cannot both
  succeed."""
  if not is_url(path):
    try:
      fd = os.open(local(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    return True
  fs, inner = filesystem(path)
  try:
    fs.pipe_file(inner, data, mode="create")
  except FileExistsError:
    return False
  return True


def remove(path: str) -> None:
  """Deletes file `path`; FileNotFoundError if it is not there."""
  if not is_url(path):
    os.unlink(local(path))
    return
  fs, inner = filesystem(path)
  if not fs.exists(inner):
    raise FileNotFoundError(path)
  fs.rm_file(inner)


def rename(source: str, destination: str) -> None:
  """Moves a file or folder: `os.replace` locally, a copy then a delete on
  an object store (not atomic there: for rare moves, never for commits)."""
  if not is_url(source) and not is_url(destination):
    os.replace(local(source), local(destination))
    return
  if scheme(source) != scheme(destination):
    raise StorageError(f"cannot move {source} to {destination}: another "
                       "store")
  fs, inner = filesystem(source)
  folder = fs.isdir(inner)
  fs.copy(inner, filesystem(destination)[1], recursive=folder)
  fs.rm(inner, recursive=folder)



@contextlib.contextmanager
def open_file(path: str, mode: str = "rb", **kwargs) -> Iterator[IO]:
  """`open` for local paths and URLs alike; append modes are refused on
  URLs (object stores cannot append: gcsfs would silently truncate)."""
  if not is_url(path):
    with open(local(path), mode, **kwargs) as f:
      yield f
    return
  if "a" in mode or "+" in mode:
    raise StorageError(f"{path}: object stores cannot append or update "
                       "in place; rewrite the whole object")
  fs, inner = filesystem(path)
  if "b" in mode:
    with fs.open(inner, mode) as f:
      yield f
  else:
    with fs.open(inner, mode.replace("t", "") + "b") as raw:
      with io.TextIOWrapper(raw, encoding=kwargs.get("encoding", "utf-8"),
                            errors=kwargs.get("errors"),
                            newline=kwargs.get("newline")) as f:
        yield f
