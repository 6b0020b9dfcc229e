"""Score tables: written whole or not at all."""

import os

import pytest

from glassy_jax.scoring import tables


def test_tables_appear_whole(tmp_path):
  """A table whose writing fails half-way leaves the previous one."""
  row = dict.fromkeys(tables.COLUMNS, 0.5)
  prefix = str(tmp_path / "table")
  tables.write_tables(prefix, [row], "before")
  with open(prefix + ".csv") as f:
    before = f.read()
  with pytest.raises(ValueError, match="not in fieldnames"):
    tables.write_tables(prefix, [dict(row, pearson_a=0.9),
                                   dict(row, extra=1.0)], "after")
  with open(prefix + ".csv") as f:
    assert f.read() == before
  assert sorted(os.listdir(tmp_path)) == ["table.csv", "table.md"]
