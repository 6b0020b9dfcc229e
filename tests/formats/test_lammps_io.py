"""Tests for glassy_jax.formats.lammps_io: dumps, data files and dataset building."""

import os

import numpy as np
import pytest

from glassy_jax.formats import data
from glassy_jax.formats import lammps_io
from glassy_jax.simulation import lammps_runtime

BOX_HEADER = "ITEM: BOX BOUNDS pp pp pp\n-1 3\n0 4\n0 4\n"


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def _dump(tmp_path, columns, rows, box_header=BOX_HEADER, timestep=0):
  text = (f"ITEM: TIMESTEP\n{timestep}\nITEM: NUMBER OF ATOMS\n{len(rows)}\n"
          f"{box_header}ITEM: ATOMS {columns}\n"
          + "".join(row + "\n" for row in rows))
  return _write(tmp_path, "a.dump", text)


# ------------------------------------------------------------------ dump files
def test_write_read_round_trip_multi_frame(tmp_path):
  rng = np.random.default_rng(0)
  frames = [lammps_io.make_frame(rng.uniform(-5, 15, (6, 3)),
                                 [0, 1, 0, 0, 1, 0], [10.0, 11.0, 12.0],
                                 origin=[0.5, -1.0, 2.0], timestep=step)
            for step in (0, 100)]
  propensity = rng.random((2, 6)).astype(np.float32)
  path = str(tmp_path / "out.dump")
  lammps_io.write_dump(path, frames, {"propensity": propensity})
  back = lammps_io.read_dump(path)
  assert [f.timestep for f in back] == [0, 100]
  for frame, orig, prop in zip(back, frames, propensity):
    np.testing.assert_array_equal(frame.positions, orig.positions)
    np.testing.assert_array_equal(frame.types, orig.types)
    np.testing.assert_array_equal(frame.box, orig.box)
    np.testing.assert_array_equal(frame.origin, orig.origin)
    np.testing.assert_array_equal(frame.ids, np.arange(1, 7))
    assert frame.unwrapped and frame.types.dtype == np.int32
    np.testing.assert_array_equal(frame.extra["propensity"].astype(np.float32),
                                  prop)
  assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_shuffled_columns_sorted_by_id(tmp_path):
  path = _dump(tmp_path, "type z id vx y x",
               ["2 0.3 3 9.0 0.2 0.1", "1 1.3 1 7.0 1.2 1.1",
                "1 2.3 2 8.0 2.2 2.1"])
  (frame,) = lammps_io.read_dump(path)
  np.testing.assert_array_equal(frame.ids, [1, 2, 3])
  np.testing.assert_array_equal(frame.types, [0, 0, 1])
  np.testing.assert_array_equal(frame.positions[0], [1.1, 1.2, 1.3])
  np.testing.assert_array_equal(frame.extra["vx"], [7.0, 8.0, 9.0])
  np.testing.assert_array_equal(frame.box, [4, 4, 4])
  np.testing.assert_array_equal(frame.origin, [-1, 0, 0])
  assert not frame.unwrapped


def test_scaled_coordinates(tmp_path):
  path = _dump(tmp_path, "id type xs ys zs", ["1 1 0.5 0.25 1.0"])
  (frame,) = lammps_io.read_dump(path)
  np.testing.assert_allclose(frame.positions, [[1.0, 1.0, 4.0]])


def test_unwrapped_and_image_flags(tmp_path):
  (unwrapped,) = lammps_io.read_dump(
      _dump(tmp_path, "id type xu yu zu", ["1 1 9.0 -2.5 0.5"]))
  np.testing.assert_array_equal(unwrapped.positions, [[9.0, -2.5, 0.5]])
  assert unwrapped.unwrapped
  (imaged,) = lammps_io.read_dump(
      _dump(tmp_path, "id type x y z ix iy iz", ["1 1 1.0 1.5 0.5 2 -1 0"]))
  np.testing.assert_array_equal(imaged.positions, [[9.0, -2.5, 0.5]])
  assert imaged.unwrapped


@pytest.mark.parametrize("header,match", [
    ("ITEM: BOX BOUNDS xy xz yz pp pp pp\n0 4 0\n0 4 0\n0 4 0\n", "triclinic"),
    ("ITEM: BOX BOUNDS ff pp pp\n0 4\n0 4\n0 4\n", "not periodic"),
])
def test_box_rejected(tmp_path, header, match):
  path = _dump(tmp_path, "id type x y z", ["1 1 0 0 0"], box_header=header)
  with pytest.raises(data.DataError, match=match) as error:
    lammps_io.read_dump(path)
  assert path in str(error.value)


@pytest.mark.parametrize("columns,row,match", [
    ("id x y z", "1 0 0 0", "missing column.*type"),
    ("id type vx vy vz", "1 1 0 0 0", "no coordinate columns"),
    ("id type x y z", "1 3 0 0 0", "types must be 1 .A. or 2 .B., found 3"),
    ("id type x y z", "1 1 nan 0 0", "NaN"),
    ("id type x y z", "1 1 0 0", "unreadable atom rows"),
])
def test_bad_atoms_rejected(tmp_path, columns, row, match):
  path = _dump(tmp_path, columns, [row])
  with pytest.raises(data.DataError, match=match) as error:
    lammps_io.read_dump(path)
  assert path in str(error.value)


def test_truncated_empty_and_inconsistent_files(tmp_path):
  frame = lammps_io.make_frame(np.ones((4, 3)), [0] * 4, [5.0] * 3)
  path = str(tmp_path / "full.dump")
  lammps_io.write_dump(path, [frame, frame._replace(timestep=10)])
  text = open(path).read()
  last_atoms = text.rindex("ITEM: ATOMS")
  for keep, match in [(len(text) - 3, r"atoms of timestep 10 \(4 of 4"),
                      (text.index("\n", last_atoms) + 1, r"atoms .*\(0 of"),
                      (last_atoms + 15, "header of timestep 10"),
                      (len("ITEM: TIMESTEP\n0\n"), "header of timestep 0")]:
    cut = _write(tmp_path, "cut.dump", text[:keep])
    with pytest.raises(data.DataError, match="truncated in the " + match):
      lammps_io.read_dump(cut)
  with pytest.raises(data.DataError, match="empty file"):
    lammps_io.read_dump(_write(tmp_path, "empty.dump", "\n"))
  small = lammps_io.make_frame(np.ones((3, 3)), [0] * 3, [5.0] * 3)
  lammps_io.write_dump(path, [frame, small])
  with pytest.raises(data.DataError, match="has 3 atoms, the first frame"):
    lammps_io.read_dump(path)


# ------------------------------------------------------------------ data files
DATA_HEADER = """LAMMPS data file via write_data, timestep = 500, units = lj

3 atoms
2 atom types

0.0 4.0 xlo xhi
-2.0 2.0 ylo yhi
0.0 4.0 zlo zhi
{tilt}
Masses

1 1
2 1

Atoms{hint}

"""


def _data(tmp_path, rows, hint=" # atomic", tilt=""):
  return _write(tmp_path, "a.data",
                DATA_HEADER.format(hint=hint, tilt=tilt) + "\n".join(rows)
                + "\n\nVelocities\n\n1 0 0 0\n2 0 0 0\n3 0 0 0\n")


def test_read_data_atomic_with_and_without_images(tmp_path):
  rows = ["3 2 1.0 1.0 1.0", "1 1 0.5 0.0 3.5", "2 1 2.0 -1.0 0.0"]
  frame = lammps_io.read_data(_data(tmp_path, rows, hint=""))
  np.testing.assert_array_equal(frame.ids, [1, 2, 3])
  np.testing.assert_array_equal(frame.types, [0, 0, 1])
  np.testing.assert_array_equal(frame.positions[0], [0.5, 0.0, 3.5])
  np.testing.assert_array_equal(frame.origin, [0, -2, 0])
  assert frame.timestep == 500 and not frame.unwrapped
  imaged = lammps_io.read_data(
      _data(tmp_path, [r + " 1 -1 0" for r in rows]))
  np.testing.assert_array_equal(imaged.positions[0], [4.5, -4.0, 3.5])
  assert imaged.unwrapped
  assert lammps_io.read_structure(str(tmp_path / "a.data")).unwrapped


def test_read_data_charge_style_and_tilt(tmp_path):
  frame = lammps_io.read_data(
      _data(tmp_path, ["1 1 0.0 0.5 0.0 3.5", "2 1 0 2 -1 0", "3 2 0 1 1 1"],
            hint=" # charge"))
  np.testing.assert_array_equal(frame.positions[0], [0.5, 0.0, 3.5])
  with pytest.raises(data.DataError, match="atom style"):
    lammps_io.read_data(_data(tmp_path, ["1 1 0 0.5 0 3.5"] * 3, hint=""))
  path = _data(tmp_path, ["1 1 0 0 0"], tilt="0.1 0 0 xy xz yz\n")
  with pytest.raises(data.DataError, match="triclinic") as error:
    lammps_io.read_data(path)
  assert path in str(error.value)



# ---------------------------------------------------------------- real LAMMPS
def test_real_lammps_dumps_and_data(tmp_path):
  try:
    lmp = lammps_runtime.new_lammps()
  except lammps_runtime.LammpsUnavailable as e:
    pytest.skip(str(e))
  try:
    for command in [
        "units lj", "atom_style atomic", "region box block -1 4 0 5 0 5",
        "create_box 2 box", "create_atoms 1 random 12 4321 box",
        "set type 1 type/fraction 2 0.3 99", "mass * 1.0",
        "set atom 3 image 1 -2 0",
        f"write_dump all custom {tmp_path}/c.dump id type x y z ix iy iz vx",
        f"write_dump all custom {tmp_path}/u.dump xu yu zu type id",
        f"write_dump all atom {tmp_path}/s.dump",
        # LAMMPS writes ITEM: UNITS and ITEM: TIME before ITEM: TIMESTEP.
        f"write_dump all custom {tmp_path}/t.dump id type xu yu zu "
        "modify units yes time yes",
        f"write_data {tmp_path}/d.data"]:
      lmp.command(command)
    ids = lmp.numpy.extract_atom("id").copy()
    x = lmp.numpy.extract_atom("x")[:len(ids)].copy()
    image = lmp.numpy.extract_atom("image")[:len(ids)].copy()
    lammps_types = lmp.numpy.extract_atom("type")[:len(ids)].copy()
  finally:
    lmp.close()
  order = np.argsort(ids)
  box = np.array([5.0, 5.0, 5.0])
  # LAMMPS packs image flags as 10-bit fields offset by 512.
  flags = np.stack([(image & 1023) - 512, (image >> 10 & 1023) - 512,
                    (image >> 20) - 512], axis=1)
  unwrapped = (x + flags * box)[order]
  custom = lammps_io.read_dump(f"{tmp_path}/c.dump")[0]
  np.testing.assert_allclose(custom.positions, unwrapped, atol=1e-5)
  np.testing.assert_array_equal(custom.types, lammps_types[order] - 1)
  assert "vx" in custom.extra
  for name in ("u.dump", "d.data", "t.dump"):
    frame = lammps_io.read_structure(f"{tmp_path}/{name}")
    np.testing.assert_allclose(frame.positions, unwrapped, atol=1e-5)
  with open(f"{tmp_path}/t.dump") as f:
    assert f.readline().strip() == "ITEM: UNITS"
  assert lammps_io.read_dump(f"{tmp_path}/t.dump")[0].time == 0.0
  scaled = lammps_io.read_dump(f"{tmp_path}/s.dump")[0]
  np.testing.assert_allclose(scaled.positions, x[order], atol=1e-5)
  np.testing.assert_array_equal(scaled.origin, [-1, 0, 0])


def test_units_and_time_before_timestep(tmp_path):
  """`dump_modify units yes time yes` puts ITEM: UNITS and ITEM: TIME
  before ITEM: TIMESTEP in every frame (LAMMPS's order)."""
  frames = "".join(
      f"ITEM: UNITS\nlj\nITEM: TIME\n{0.005 * step}\nITEM: TIMESTEP\n{step}\n"
      f"ITEM: NUMBER OF ATOMS\n2\n{BOX_HEADER}ITEM: ATOMS id type x y z\n"
      f"1 1 0 0 {step}\n2 2 1 1 1\n" for step in (0, 10))
  path = _write(tmp_path, "lammps_order.dump", frames)
  read = lammps_io.read_dump(path)
  assert [f.timestep for f in read] == [0, 10]
  assert [f.time for f in read] == [0.0, 0.05]
  np.testing.assert_allclose(read[1].positions[0], [0, 0, 10])
  assert lammps_io.read_structure(path).timestep == 0
