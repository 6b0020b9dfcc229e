"""LAMMPS snapshots in and out: text dumps and data files.

Users simulate with LAMMPS, so their structures arrive as `dump custom` /
`dump atom` text files or `write_data` files. This module reads them into
`Frame`s (atoms sorted by id, types 0 = A / 1 = B), writes frames back as a
`dump custom` file that OVITO opens (with extra per-atom columns such as a
predicted `propensity`). `apply` reads and writes through here;
`glassy_jax.simulation.build_system` turns trajectory dumps into a dataset.

Every problem raises `glassy_jax.formats.data.DataError` with a one-line message that
names the file.
"""

import io
import itertools
import re
from typing import (Dict, Iterator, List, NamedTuple, Optional, Sequence,
                    Union)

import numpy as np

from glassy_jax.formats import atomic
from glassy_jax.formats import data
from glassy_jax.formats import storage

# Coordinate column sets, best first: (names, unwrapped, scaled).
_COORDINATES = ((("xu", "yu", "zu"), True, False),
                (("xsu", "ysu", "zsu"), True, True),
                (("x", "y", "z"), False, False),
                (("xs", "ys", "zs"), False, True))
_IMAGES = ("ix", "iy", "iz")
# Items a frame may open with: LAMMPS writes `dump_modify units yes` /
# `time yes` items before ITEM: TIMESTEP.
_FIRST_ITEMS = ("ITEM: TIMESTEP", "ITEM: UNITS", "ITEM: TIME")
# Per-atom columns that never become `Frame.extra` (`element` is text).
_NOT_EXTRA = frozenset(
    ("id", "type", "element") + _IMAGES
    + tuple(c for names, _, _ in _COORDINATES for c in names))


class Frame(NamedTuple):
  """One snapshot: atoms sorted by id, positions absolute (not scaled)."""
  timestep: int
  positions: np.ndarray  # [N, 3] float64; unwrapped iff `unwrapped`.
  types: np.ndarray  # [N] int32, 0 = A (LAMMPS type 1), 1 = B (type 2).
  box: np.ndarray  # [3] float64 box lengths.
  origin: np.ndarray  # [3] float64 lower box corner (xlo, ylo, zlo).
  ids: np.ndarray  # [N] int64 LAMMPS atom ids, ascending.
  unwrapped: bool  # From xu/xsu columns or image flags.
  extra: Dict[str, np.ndarray]  # Other per-atom columns (vx, c_pe, ...).
  time: Optional[float] = None  # Simulated time, if the dump records it.


def make_frame(positions: np.ndarray, types: np.ndarray, box: np.ndarray,
               origin: Optional[np.ndarray] = None, timestep: int = 0,
               unwrapped: bool = True) -> Frame:
  """A `Frame` from arrays (e.g. a `data.Snapshot`), ids 1..N, for writing."""
  positions = np.asarray(positions, np.float64)
  return Frame(
      timestep=timestep, positions=positions,
      types=np.asarray(types, np.int32), box=np.asarray(box, np.float64),
      origin=(np.zeros(3) if origin is None
              else np.asarray(origin, np.float64)),
      ids=np.arange(1, len(positions) + 1, dtype=np.int64),
      unwrapped=unwrapped, extra={})


# ------------------------------------------------------------------ dump files
def iter_dump(path: str) -> Iterator[Frame]:
  """Yields the frames of a text dump one at a time (large files stream)."""
  with _open_text(path) as f:
    line = _next_nonblank(f)
    if not line:
      raise data.DataError(f"{path}: empty file")
    first_n = None
    while line:
      frame = _read_dump_frame(f, line, path)
      if first_n is None:
        first_n = len(frame.ids)
      elif len(frame.ids) != first_n:
        raise data.DataError(
            f"{path}: frame at timestep {frame.timestep} has "
            f"{len(frame.ids)} atoms, the first frame has {first_n}")
      yield frame
      line = _next_nonblank(f)


def read_dump(path: str) -> List[Frame]:
  """All frames of a text `dump custom` / `dump atom` file."""
  return list(iter_dump(path))


def _open_text(path: str):
  if not storage.isfile(path):
    raise data.DataError(f"{path}: no such file")
  if storage.is_url(path):  # Read whole: a dump is read front to back.
    return io.StringIO(storage.read_bytes(path).decode("utf-8", "replace"))
  return open(path, "r", encoding="utf-8", errors="replace")


def _next_nonblank(f) -> str:
  for line in f:
    if line.strip():
      return line
  return ""


def _value_line(f, path: str, item: str) -> List[str]:
  line = f.readline()
  if not line.strip():
    raise data.DataError(f"{path}: truncated after 'ITEM: {item}'")
  return line.split()


def _read_dump_frame(f, line: str, path: str) -> Frame:
  """Parses one frame whose first line (`ITEM: TIMESTEP`, or the
  `ITEM: UNITS` / `ITEM: TIME` LAMMPS puts before it) is `line`."""
  if line.strip() not in _FIRST_ITEMS:
    raise data.DataError(
        f"{path}: expected 'ITEM: TIMESTEP', found {line.strip()[:60]!r} "
        "(not a LAMMPS text dump?)")
  timestep, time, n, bounds = None, None, None, None
  while True:
    if not line.endswith("\n"):
      raise data.DataError(f"{path}: truncated in the header of timestep "
                           f"{timestep}")
    item = line.strip()[len("ITEM:"):].strip()
    try:
      if item == "TIMESTEP":
        timestep = int(_value_line(f, path, item)[0])
      elif item == "TIME":
        time = float(_value_line(f, path, item)[0])
      elif item == "UNITS":
        _value_line(f, path, item)
      elif item == "NUMBER OF ATOMS":
        n = int(_value_line(f, path, item)[0])
      elif item.startswith("BOX BOUNDS"):
        _check_box_flags(item.split()[2:], path)
        bounds = np.array([_value_line(f, path, item)[:2] for _ in range(3)],
                          dtype=np.float64)
      elif item.startswith("ATOMS"):
        break
      else:
        raise data.DataError(f"{path}: unknown dump item 'ITEM: {item}'")
    except data.DataError:
      raise
    except (ValueError, IndexError):
      raise data.DataError(f"{path}: bad value after 'ITEM: {item}'") from None
    line = f.readline()
    if line.endswith("\n") and not line.startswith("ITEM:"):
      raise data.DataError(f"{path}: expected an 'ITEM:' line at timestep "
                           f"{timestep}, found {line.strip()[:60]!r}")
  if timestep is None or n is None or bounds is None:
    raise data.DataError(f"{path}: frame header lacks TIMESTEP, NUMBER OF "
                         "ATOMS or BOX BOUNDS")
  if n < 1:
    raise data.DataError(f"{path}: timestep {timestep} has no atoms")
  columns = item.split()[1:]
  lines = list(itertools.islice(f, n))
  cut_row = bool(lines) and not lines[-1].endswith("\n") and (
      len(lines[-1].split()) < len(columns))
  if len(lines) < n or cut_row:
    raise data.DataError(f"{path}: truncated in the atoms of timestep "
                         f"{timestep} ({len(lines)} of {n} rows)")
  where = f"{path}: timestep {timestep}"
  return _atoms_to_frame(lines, columns, bounds, timestep, time, where)


def _check_box_flags(flags: Sequence[str], path: str) -> None:
  if any(flag in ("xy", "xz", "yz", "abc", "origin") for flag in flags):
    raise data.DataError(f"{path}: triclinic box ({' '.join(flags)}); only "
                         "orthogonal boxes are supported")
  if flags and list(flags) != ["pp"] * 3:
    raise data.DataError(f"{path}: boundaries '{' '.join(flags)}' are not "
                         "periodic ('pp pp pp' required)")


def _atoms_to_frame(lines: Sequence[str], columns: Sequence[str],
                    bounds: np.ndarray, timestep: int, time: Optional[float],
                    where: str) -> Frame:
  """Turns the text rows of an `ITEM: ATOMS` block into a sorted `Frame`."""
  for names, unwrapped, scaled in _COORDINATES:
    if all(c in columns for c in names):
      break
  else:
    raise data.DataError(
        f"{where}: no coordinate columns (need one of x y z, xu yu zu, "
        f"xs ys zs, xsu ysu zsu; found {' '.join(columns)})")
  missing = [c for c in ("id", "type") if c not in columns]
  if missing:
    raise data.DataError(f"{where}: missing column(s) {' '.join(missing)}")
  has_images = not unwrapped and all(c in columns for c in _IMAGES)
  wanted = ["id", "type", *names] + (list(_IMAGES) if has_images else [])
  wanted += [c for c in columns if c not in _NOT_EXTRA]
  try:
    table = np.loadtxt(lines, dtype=np.float64, ndmin=2,
                       usecols=[columns.index(c) for c in wanted])
  except (ValueError, IndexError) as e:
    raise data.DataError(f"{where}: unreadable atom rows ({e})") from None
  values = dict(zip(wanted, table.T))
  origin, box = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
  positions = np.stack([values[c] for c in names], axis=1)
  if scaled:
    positions = origin + positions * box
  if has_images:
    positions = positions + np.stack([values[c] for c in _IMAGES], 1) * box
  extra = {c: values[c] for c in columns if c not in _NOT_EXTRA}
  return _sorted_frame(values["id"], values["type"], positions, box, origin,
                       timestep, unwrapped or has_images, extra, time, where)


def _sorted_frame(ids, lammps_types, positions, box, origin, timestep,
                  unwrapped, extra, time, where) -> Frame:
  """Checks ids, types, coordinates and box; sorts atoms by id."""
  if not np.all(np.isfinite(positions)):
    raise data.DataError(f"{where}: coordinates contain NaN or inf")
  if not np.all(np.isfinite(box)) or np.any(box <= 0):
    raise data.DataError(f"{where}: box lengths must be positive, got {box}")
  unknown = sorted(set(np.unique(lammps_types).tolist()) - {1.0, 2.0})
  if unknown:
    raise data.DataError(
        f"{where}: atom types must be 1 (A) or 2 (B), found "
        f"{', '.join(f'{t:g}' for t in unknown)}")
  order = np.argsort(ids, kind="stable")
  ids = ids[order].astype(np.int64)
  if np.any(ids[1:] == ids[:-1]):
    raise data.DataError(f"{where}: duplicate atom ids")
  return Frame(timestep=timestep, positions=positions[order],
               types=(lammps_types[order] - 1).astype(np.int32),
               box=box, origin=origin, ids=ids, unwrapped=bool(unwrapped),
               extra={k: v[order] for k, v in extra.items()}, time=time)


def write_dump(path: str, frames: Union[Frame, Sequence[Frame]],
               extra_columns: Optional[Dict[str, np.ndarray]] = None) -> None:
  """Writes frames as a `dump custom` file (temp file + rename).

  Columns are `id type xu yu zu` (or `x y z` for wrapped frames), then each
  frame's `extra` columns, then `extra_columns`: name -> [N] array (the same
  for every frame) or [num_frames, N]. The apply tool uses this to hand OVITO
  a `propensity` column.
  """
  frames = [frames] if isinstance(frames, Frame) else list(frames)
  if not frames:
    raise data.DataError(f"{path}: no frames to write")
  extra_columns = {k: np.asarray(v) for k, v in (extra_columns or {}).items()}
  with atomic.atomic_write(path, "w") as f:
    for i, frame in enumerate(frames):
      n = len(frame.positions)
      columns = dict(frame.extra)
      for name, value in extra_columns.items():
        per_frame = value[i] if value.shape == (len(frames), n) else value
        if name in _NOT_EXTRA or per_frame.shape != (n,):
          raise data.DataError(f"{path}: extra column '{name}' of shape "
                               f"{value.shape}: expected ({n},) or "
                               f"({len(frames)}, {n}), not a standard name")
        columns[name] = per_frame
      coordinates = "xu yu zu" if frame.unwrapped else "x y z"
      header = [f"ITEM: TIMESTEP\n{frame.timestep}"]
      if frame.time is not None:
        header.append(f"ITEM: TIME\n{frame.time!r}")
      header.append(f"ITEM: NUMBER OF ATOMS\n{n}\nITEM: BOX BOUNDS pp pp pp")
      header += [f"{lo!r} {lo + length!r}"
                 for lo, length in zip(frame.origin.tolist(),
                                       frame.box.tolist())]
      header.append(f"ITEM: ATOMS id type {coordinates} {' '.join(columns)}")
      f.write("\n".join(header).rstrip() + "\n")
      table = np.column_stack(
          [frame.ids, frame.types + 1, frame.positions, *columns.values()])
      fmt = ["%d", "%d"] + ["%.17g"] * 3 + [
          _number_format(v.dtype) for v in columns.values()]
      np.savetxt(f, table, fmt=fmt)


def _number_format(dtype: np.dtype) -> str:
  """Shortest printf format that round-trips values of `dtype`."""
  if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_):
    return "%d"
  return "%.9g" if dtype == np.float32 else "%.17g"


# ------------------------------------------------------------------ data files
# Columns before x y z in the `Atoms` section, by atom style.
_ATOM_STYLES = {"atomic": ("id", "type"), "charge": ("id", "type", "q"),
                "full": ("id", "mol", "type", "q"),
                "molecular": ("id", "mol", "type"),
                "bond": ("id", "mol", "type"), "angle": ("id", "mol", "type")}


def read_data(path: str) -> Frame:
  """Reads a LAMMPS data file (orthogonal box; atomic, charge, full, ...).

  The atom style comes from the `Atoms # style` hint LAMMPS writes; without
  it, 5 or 8 columns mean `atomic`. Image flags, when present, unwrap the
  positions.
  """
  with _open_text(path) as f:
    lines = f.read().splitlines()
  if not any(line.strip() for line in lines):
    raise data.DataError(f"{path}: empty file")
  match = re.search(r"timestep\s*=\s*(\d+)", lines[0])
  timestep = int(match.group(1)) if match else 0
  n, bounds, row = None, np.full((3, 2), np.nan), 1
  for row in range(1, len(lines)):
    text = lines[row].split("#")[0].strip()
    if text and text[0].isalpha():
      break  # First section keyword: the header is over.
    words = text.split()
    try:
      if words[-1:] == ["atoms"]:
        n = int(words[0])
      elif words[-2:] in (["xlo", "xhi"], ["ylo", "yhi"], ["zlo", "zhi"]):
        bounds["xyz".index(words[-1][0])] = [float(w) for w in words[:2]]
      elif words[-3:] == ["xy", "xz", "yz"]:
        raise data.DataError(
            f"{path}: triclinic box (xy xz yz tilt); only orthogonal boxes "
            "are supported")
    except data.DataError:
      raise
    except ValueError:
      raise data.DataError(f"{path}: bad header line {lines[row]!r}") from None
  if n is None or np.isnan(bounds).any():
    raise data.DataError(f"{path}: header lacks 'N atoms' or a box bound "
                         "(xlo xhi, ylo yhi, zlo zhi)")
  start = next((i for i in range(row, len(lines))
                if lines[i].split("#")[0].strip() == "Atoms"), None)
  if start is None:
    raise data.DataError(f"{path}: no 'Atoms' section")
  hint = lines[start].partition("#")[2].strip()
  atom_lines = list(itertools.islice(
      (line for line in lines[start + 1:] if line.strip()), n))
  if len(atom_lines) < n:
    raise data.DataError(f"{path}: truncated: the Atoms section lists "
                         f"{len(atom_lines)} of {n} atoms")
  try:
    table = np.loadtxt(atom_lines, dtype=np.float64, ndmin=2, comments="#")
  except ValueError as e:
    raise data.DataError(f"{path}: unreadable Atoms rows ({e})") from None
  return _data_table_to_frame(table, hint, bounds, timestep, path)


def _data_table_to_frame(table: np.ndarray, hint: str, bounds: np.ndarray,
                         timestep: int, path: str) -> Frame:
  ncol = table.shape[1]
  if not hint and ncol in (5, 8):
    hint = "atomic"
  if hint not in _ATOM_STYLES:
    raise data.DataError(
        f"{path}: atom style {hint or 'unknown'!r} with {ncol} columns; "
        f"supported: 'Atoms # STYLE' with STYLE in {', '.join(_ATOM_STYLES)}")
  leading = _ATOM_STYLES[hint]
  if ncol not in (len(leading) + 3, len(leading) + 6):
    raise data.DataError(f"{path}: {ncol} columns in Atoms, but style "
                         f"{hint} has {len(leading) + 3} (+3 image flags)")
  first = len(leading)
  origin, box = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
  positions = table[:, first:first + 3]
  has_images = ncol == first + 6
  if has_images:
    positions = positions + table[:, first + 3:] * box
  return _sorted_frame(table[:, leading.index("id")],
                       table[:, leading.index("type")], positions, box,
                       origin, timestep, has_images, {}, None, path)


def read_structure(path: str) -> Frame:
  """The first frame of a dump, or the configuration in a data file."""
  with _open_text(path) as f:
    is_dump = _next_nonblank(f).strip() in _FIRST_ITEMS
  return next(iter_dump(path)) if is_dump else read_data(path)
