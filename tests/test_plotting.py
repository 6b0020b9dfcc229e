"""Figures: each is written at its fixed pixel size; bad input, one line."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from glassy_jax import data
from glassy_jax import evaluate
from glassy_jax import plotting
from conftest import REPO, synthetic_system
from conftest import make_random_checkpoint
from conftest import record_atomic_writes


def _assert_png(path, kind):
  width, height = plotting.SIZES[kind]
  with Image.open(path) as image:
    assert image.format == "PNG"
    assert image.size == (round(width * plotting.DPI),
                          round(height * plotting.DPI))


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "glassy_jax.plotting", *args],
                        cwd=REPO, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  return tmp_path_factory.mktemp("plotting")


@pytest.fixture(scope="module")
def workdir(root):
  """A training workdir whose run was resumed (steps 20-30 logged twice)."""
  records = []
  for step in list(range(10, 40, 10)) + [20, 30, 40]:
    records.append({"step": step, "split": "train", "loss": 1.0 / step})
    records.append({"step": step, "split": "test", "pearson_a": step / 50,
                    "pearson_a_std": 0.05, "pearson_b": step / 80,
                    "pooled_pearson_a": step / 55, "l1_a": 0.1, "l2_a": 0.01})
  (root / "run").mkdir()
  with open(root / "run" / "metrics.jsonl", "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in records))
  return root / "run"


@pytest.fixture(scope="module")
def prediction(root):
  path = str(root / "aggregated-000.pickle")
  data.write_system(path, synthetic_system(3))
  make_random_checkpoint(root / "random.npz")
  return plotting.predict_file(str(root / "random.npz"), path, 2)


def test_learning_curves(workdir):
  records = plotting.read_metrics(str(workdir))
  assert [r["step"] for r in records["test"]] == [10, 20, 30, 40]
  _assert_png(plotting.learning_curves(str(workdir)), "curves")


def test_correlation_vs_time(root):
  tables = []
  for name, shift in (("a", 0.0), ("b", 0.1)):
    rows = [dict.fromkeys(evaluate.COLUMNS, 0.1) for _ in range(10)]
    for k, row in enumerate(rows):
      row.update(time_index=k, time=0.1 * 3 ** k, pearson_a=0.9 - k / 20
                 + shift, pearson_b=0.7 - k / 20)
    evaluate.write_tables(str(root / name), rows, name)
    tables.append(str(root / f"{name}.csv"))
  output = str(root / "correlation.png")
  _assert_png(plotting.correlation_vs_time(tables, ["a", "b"], output),
              "correlation_vs_time")


def test_scatter_and_slab_views(prediction, root):
  snapshot = prediction.snapshot
  assert prediction.time_index == 2 and np.isfinite(prediction.time)
  assert prediction.predictions.shape == snapshot.targets.shape
  _assert_png(plotting.scatter(prediction.predictions, snapshot.targets,
                               snapshot.types, str(root / "scatter.png")),
              "scatter")
  for targets, kind in ((snapshot.targets, "snapshot"),
                       (None, "snapshot_prediction")):
    _assert_png(plotting.slab_view(
        snapshot.positions, snapshot.box, snapshot.types,
        prediction.predictions, targets, str(root / f"{kind}.png"),
        plotting.describe(prediction)), kind)


def test_figures_are_written_atomically(workdir, monkeypatch):
  """Through `atomic_write`: a killed run leaves the previous figure whole."""
  written = record_atomic_writes(monkeypatch)
  output = plotting.learning_curves(str(workdir), str(workdir / "whole.png"))
  assert written == [output]
  _assert_png(output, "curves")
  assert not [f for f in os.listdir(workdir) if f.startswith(".tmp-")]


def test_cli_draws_curves(workdir):
  output = workdir / "cli.png"
  result = _cli("curves", f"--workdir={workdir}", f"--output={output}")
  assert result.returncode == 0, result.stderr
  _assert_png(output, "curves")


@pytest.mark.parametrize("case",
                         ["command", "workdir", "flag", "table", "output"])
def test_cli_errors_are_one_line(root, workdir, case):
  args = {
      "command": ["histogram"],
      "workdir": ["curves", f"--workdir={root / 'absent'}"],
      "flag": ["scatter", f"--checkpoint={root / 'random.npz'}",
               f"--output={root / 'never.png'}"],
      "table": ["correlation_vs_time",
                f"--tables={workdir / 'metrics.jsonl'}",
                f"--output={root / 'never.png'}"],
      "output": ["curves", f"--workdir={workdir}",
                 "--output=/proc/nope/c.png"],
  }[case]
  result = _cli(*args)
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
  assert errors == [result.stderr.strip().splitlines()[-1]]
  if case == "output":
    assert errors == ["error: cannot write to /proc/nope/c.png: No such file "
                      "or directory"]
  assert not (root / "never.png").exists()


def test_time_to_accuracy_draws_one_line_per_run(tmp_path):
  workdirs = {}
  for name, slope in (("slow", 0.001), ("fast", 0.01)):
    workdir = tmp_path / name
    workdir.mkdir()
    with open(workdir / "metrics.jsonl", "w") as f:
      for step in (10, 20, 30):
        f.write(json.dumps({"split": "test", "step": step,
                            "elapsed_s": 2.0 * step,
                            "pearson_a": slope * step}) + "\n")
    workdirs[name] = str(workdir)
  output = plotting.time_to_accuracy(workdirs, str(tmp_path / "t.png"),
                                     (0.3, 0.5))
  assert os.path.getsize(output) > 1000
  old = tmp_path / "old"
  old.mkdir()
  (old / "metrics.jsonl").write_text(
      json.dumps({"split": "test", "step": 1, "pearson_a": 0.1}) + "\n")
  with pytest.raises(plotting.PlotError, match="no test record with elapsed_s"):
    plotting.time_to_accuracy({"old": str(old)}, str(tmp_path / "o.png"))
