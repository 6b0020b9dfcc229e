"""Figures: what each draws, its fixed pixel size; bad input, one line."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from glassy_jax.formats import data
from glassy_jax.inference import plotting
from glassy_jax.scoring import tables
from conftest import REPO, synthetic_system
from conftest import make_random_checkpoint
from conftest import record_atomic_writes


def _assert_png(figure, kind, path):
  """`figure` saved to `path` is a PNG of the size of `kind`."""
  plotting.save(figure, str(path))
  width, height = plotting.SIZES[kind]
  with Image.open(path) as image:
    assert image.format == "PNG"
    assert image.size == (round(width * plotting.DPI),
                          round(height * plotting.DPI))


def _cli(*args):
  return subprocess.run(
      [sys.executable, "-m", "glassy_jax.programs.plot", *args],
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


def _lines(axes):
  """{label: (x, y)} of the labelled lines of `axes`."""
  return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
          for line in axes.get_lines() if not line.get_label().startswith("_")}


def test_learning_curves(workdir):
  records = plotting.read_metrics(str(workdir))
  assert [r["step"] for r in records["test"]] == [10, 20, 30, 40]
  figure = plotting.learning_curves(str(workdir))
  loss_ax, r_ax = figure.axes
  (loss,) = loss_ax.get_lines()
  assert list(loss.get_xdata()) == [10, 20, 30, 40]
  assert loss_ax.get_yscale() == "log"
  lines = _lines(r_ax)
  assert lines["A (mean ± std over test files)"][1] == [0.2, 0.4, 0.6, 0.8]
  assert lines["B"][1] == [0.125, 0.25, 0.375, 0.5]
  assert r_ax.get_ylabel() == "Pearson r"
  _assert_png(figure, "curves", workdir / "curves.png")


def test_correlation_vs_time(root):
  """Networks solid with B dotted; baselines of the same table dashed."""
  paths = []
  for name, shift in (("a", 0.0), ("b", 0.1)):
    rows = [dict(dict.fromkeys(tables.COLUMNS, 0.1), model=f"{name}.npz",
                 data="demo") for _ in range(10)]
    for k, row in enumerate(rows):
      row.update(time_index=k, time=0.1 * 3 ** k, pearson_a=0.9 - k / 20
                 + shift, pearson_b=0.7 - k / 20)
    if name == "b":
      rows += [dict(row, model="epot", pearson_a=0.2) for row in rows]
    tables.write_tables(str(root / name), rows, name)
    paths.append(str(root / f"{name}.csv"))
  figure = plotting.correlation_vs_time(paths, ["a", "b"], ("epot",))
  (ax,) = figure.axes
  lines = _lines(ax)
  assert sorted(lines) == ["a: A", "a: B", "b: A", "b: B", "epot: A"]
  np.testing.assert_allclose(lines["b: A"][1], [1.0 - k / 20
                                                for k in range(10)])
  np.testing.assert_allclose(lines["a: B"][0], [0.1 * 3 ** k
                                                for k in range(10)])
  assert lines["epot: A"][1] == [0.2] * 10
  styles = {l.get_label(): l.get_linestyle() for l in ax.get_lines()}
  assert styles["epot: A"] == "--" and styles["a: A"] == "-"
  assert styles["a: B"] == ":"
  assert ax.get_xscale() == "log"
  _assert_png(figure, "correlation_vs_time", root / "correlation.png")


def test_scatter_and_slab_views(prediction, root):
  snapshot = prediction.snapshot
  assert prediction.time_index == 2 and np.isfinite(prediction.time)
  assert prediction.predictions.shape == snapshot.targets.shape
  figure = plotting.scatter(prediction.predictions, snapshot.targets,
                            snapshot.types)
  (ax,) = figure.axes
  points = [c.get_offsets() for c in ax.collections]
  assert [len(p) for p in points] == [(snapshot.types == k).sum()
                                      for k in (0, 1)]
  a_points = np.asarray(points[0])  # (true, predicted) of each A particle.
  np.testing.assert_allclose(
      a_points, np.stack([snapshot.targets, prediction.predictions],
                         1)[snapshot.types == 0], rtol=1e-6)
  assert ax.get_legend() is None  # Off the data: the figure's, below.
  (legend,) = figure.legends
  labels = [t.get_text() for t in legend.get_texts()]
  r_a = np.corrcoef(prediction.predictions[snapshot.types == 0],
                    snapshot.targets[snapshot.types == 0])[0, 1]
  assert labels[0].endswith(f"r = {r_a:.3f})")
  _assert_png(figure, "scatter", root / "scatter.png")
  for targets, kind, panels in ((snapshot.targets, "snapshot", 2),
                                (None, "snapshot_prediction", 1)):
    figure = plotting.slab_view(
        snapshot.positions, snapshot.box, snapshot.types,
        prediction.predictions, targets, plotting.describe(prediction))
    titles = [ax.get_title() for ax in figure.axes[:panels]]
    assert titles == ["predicted propensity", "true propensity"][:panels]
    _assert_png(figure, kind, root / f"{kind}.png")


def test_figures_are_written_atomically(workdir, monkeypatch):
  """Through `atomic_write`: a killed run leaves the previous figure whole."""
  written = record_atomic_writes(monkeypatch)
  output = str(workdir / "whole.png")
  _assert_png(plotting.learning_curves(str(workdir)), "curves", output)
  assert written == [output]
  assert not [f for f in os.listdir(workdir) if f.startswith(".tmp-")]


def test_cli_draws_curves(workdir):
  output = workdir / "cli.png"
  result = _cli("curves", f"--workdir={workdir}", f"--output={output}")
  assert result.returncode == 0, result.stderr
  with Image.open(output) as image:
    assert image.size == tuple(round(x * plotting.DPI)
                               for x in plotting.SIZES["curves"])


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
  figure = plotting.time_to_accuracy(workdirs, (0.3, 0.5))
  (ax,) = figure.axes
  lines = _lines(ax)
  assert sorted(lines) == ["fast", "slow"]
  assert lines["fast"] == ([20 / 60, 40 / 60, 1.0], [0.1, 0.2, 0.3])
  thresholds = [l.get_ydata()[0] for l in ax.get_lines()
                if l.get_label().startswith("_")]
  assert thresholds == [0.3, 0.5]
  old = tmp_path / "old"
  old.mkdir()
  (old / "metrics.jsonl").write_text(
      json.dumps({"split": "test", "step": 1, "pearson_a": 0.1}) + "\n")
  with pytest.raises(plotting.PlotError, match="no test record with elapsed_s"):
    plotting.time_to_accuracy({"old": str(old)})
