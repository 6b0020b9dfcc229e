"""Progress of long work: a bar on a terminal, plain lines in a log.

tqdm's bar redraws one line with carriage returns; written to a file (a
cluster job's log, `... 2> log`) it leaves thousands of fragments. Where
stderr is not a terminal, `bar` logs a plain line instead: at the start,
each tenth of the way (at most once every `LOG_EVERY_S` seconds) and at the
end.
"""

import sys
import time
from typing import Iterable, Optional

from absl import logging
from tqdm import tqdm

LOG_EVERY_S = 10.0


class _LogLines:
  """The part of tqdm's interface the package uses, as log lines."""

  def __init__(self, iterable: Optional[Iterable], desc: str, unit: str,
               total: Optional[int]):
    self._iterable = iterable
    if total is None and hasattr(iterable, "__len__"):
      total = len(iterable)
    self._desc, self._unit, self._total = desc, unit, total
    self._done, self._start = 0, time.monotonic()
    self._last_line, self._logged, self._closed = -LOG_EVERY_S, -1, False
    self._step = max(1, (total or 10) // 10)

  def __iter__(self):
    for item in self._iterable:
      yield item
      self.update()
    self.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def update(self, n: int = 1) -> None:
    before, self._done = self._done, self._done + n
    now = time.monotonic()
    if (self._done // self._step > before // self._step
        and now - self._last_line >= LOG_EVERY_S):
      self._line()

  def close(self) -> None:
    # The end once, when no line has said it already.
    if not self._closed and self._logged != self._done:
      self._line()
    self._closed = True

  def _line(self) -> None:
    self._last_line, self._logged = time.monotonic(), self._done
    of = f"/{self._total}" if self._total else ""
    logging.info("%s: %d%s %s, %.0f s", self._desc, self._done, of,
                 self._unit, self._last_line - self._start)


def bar(iterable: Optional[Iterable] = None, *, desc: str, unit: str,
        total: Optional[int] = None, disable: bool = False,
        delay: float = 0.0):
  """tqdm's bar on a terminal, log lines elsewhere, nothing if `disable`.

  Iterate over it, or use it as a context manager and call `update(n)`.
  `delay`: seconds before a bar appears (short work shows none).
  """
  if disable or sys.stderr.isatty():
    return tqdm(iterable, desc=desc, unit=unit, total=total, delay=delay,
                disable=disable, file=sys.stderr)
  return _LogLines(iterable, desc, unit, total)
