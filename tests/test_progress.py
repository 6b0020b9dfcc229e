"""Progress: plain log lines where stderr is not a terminal."""

from absl import logging

from glassy_jax import progress


def test_a_log_gets_lines_not_a_bar(monkeypatch, capsys):
  lines = []
  monkeypatch.setattr(logging, "info", lambda fmt, *a: lines.append(fmt % a))
  monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
  items = list(progress.bar(range(20), desc="reading train", unit="file"))
  assert items == list(range(20))
  # Every tenth of the way, the last one being the end (logged once).
  assert lines[0] == "reading train: 2/20 file, 0 s"
  assert lines[-1] == "reading train: 20/20 file, 0 s"
  assert len(lines) == 10
  assert "\r" not in capsys.readouterr().err  # pytest's stderr: no tty.


def test_updates_and_a_rate_limit(monkeypatch):
  lines = []
  monkeypatch.setattr(logging, "info", lambda fmt, *a: lines.append(fmt % a))
  with progress.bar(total=100, desc="predicting", unit="frame") as bar:
    for _ in range(100):
      bar.update()
  # The first tenth logs; later tenths come within LOG_EVERY_S; then the end.
  assert [line.split(",")[0] for line in lines] == [
      "predicting: 10/100 frame", "predicting: 100/100 frame"]


def test_disabled_is_silent(monkeypatch):
  lines = []
  monkeypatch.setattr(logging, "info", lambda fmt, *a: lines.append(fmt % a))
  assert list(progress.bar([1, 2], desc="x", unit="y", disable=True)) == [1, 2]
  assert not lines
