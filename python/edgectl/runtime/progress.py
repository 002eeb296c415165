"""A one-line progress display for ``edgectl run`` on a terminal.

:class:`ProgressLine` runs on its own daemon thread and, at most once per ``interval_s`` of wall
time, rewrites one line in place (carriage return, padded to the previous line's length, cut to
the terminal's width so it never wraps)::

    batch  1.23 h  T 37.01  pH 7.00  DO 31.2  feed 0.000 mL/min  598x of 600x

It never takes the controller's lock: it reads attributes the scan replaces whole (``now_s``,
``outputs``, the recipe's phase name) and tag samples through the tag store, whose own lock is
held only for a dictionary look-up. The scan is never blocked by it, even when the terminal is
(a paused terminal blocks this thread's write, nothing else).
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from edgectl.quality import Quality
from edgectl.runtime.reactor_config import FeedLoop

__all__ = ["ProgressLine", "progress_fields"]

#: loops whose PVs the line shows first, with the label used for each
_KNOWN_LOOPS: tuple[tuple[str, str], ...] = (("temp", "T"), ("ph", "pH"), ("do", "DO"))
#: loops shown when none of the known names exists
_MAX_OTHER_LOOPS = 3
#: the achieved speed is shown once this much wall time has passed (not a ratio of noise)
_MIN_SPEED_WALL_S = 0.5


def _pv_loops(cfg: Any) -> list[tuple[str, str]]:
    """(label, pv tag) of the loops to show: temp/ph/do if present, else the first few."""
    loops = cfg.loops
    known = [(label, loops[n].pv) for n, label in _KNOWN_LOOPS if getattr(loops.get(n), "pv", "")]
    if known:
        return known
    others = [(n, loop.pv) for n, loop in loops.items() if getattr(loop, "pv", "")]
    return others[:_MAX_OTHER_LOOPS]


def _feed_output(cfg: Any) -> str | None:
    """The output of the first ``feed`` loop, if any."""
    for loop in cfg.loops.values():
        if isinstance(loop, FeedLoop):
            return loop.output
    return None


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "--"


def progress_fields(
    controller: Any, speed: float | None, elapsed_wall_s: float, sim_s: float
) -> str:
    """The progress text for ``controller`` now (no carriage return, no padding).

    ``sim_s`` is the simulated time elapsed over ``elapsed_wall_s`` of wall time (the achieved
    speed is their ratio); ``speed`` is the requested one (None: not shown).
    """
    cfg = controller.cfg
    now_s = float(controller.now_s)
    recipe = controller.recipe
    parts = []
    if recipe is not None:
        parts.append(str(recipe.phase_name))
    parts.append(f"{now_s / 3600.0:.2f} h")
    for label, pv in _pv_loops(cfg):
        s = controller.tags.read(pv, now_s)
        digits = 1 if label == "DO" else 2
        written = math.isfinite(s.time_s)  # never written yet: just "--"
        mark = "" if s.quality is Quality.GOOD or not written else f" ({s.quality.name.lower()})"
        parts.append(f"{label} {_fmt(s.value, digits)}{mark}")
    feed = _feed_output(cfg)
    if feed is not None:
        value = float(controller.outputs.get(feed, math.nan))
        unit = cfg.outputs[feed].unit if feed in cfg.outputs else ""
        parts.append(f"feed {_fmt(value, 3)} {unit}".rstrip())
    if elapsed_wall_s >= _MIN_SPEED_WALL_S:
        achieved = f"{sim_s / elapsed_wall_s:.0f}x"
        parts.append(f"{achieved} of {speed:g}x" if speed is not None else achieved)
    return "  ".join(parts)


class ProgressLine:
    """Rewrites one progress line on ``stream`` every ``interval_s`` until :meth:`stop`.

    Parameters
    ----------
    controller
        The running :class:`edgectl.runtime.controller.Controller`.
    stream
        A terminal (the caller checks ``isatty()``).
    speed
        The requested clock speed, shown beside the achieved one.
    interval_s
        Wall seconds between updates (at least 1 s by default: a terminal is not a log).
    wall_clock
        Source of wall time (``time.monotonic``).
    """

    def __init__(
        self,
        controller: Any,
        stream: TextIO,
        *,
        speed: float | None = None,
        interval_s: float = 1.0,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (interval_s > 0.0 and math.isfinite(interval_s)):
            raise ValueError(f"interval_s must be a finite number > 0, got {interval_s}")
        self.controller = controller
        self.stream = stream
        self.speed = speed
        self.interval_s = float(interval_s)
        self._wall = wall_clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._width = 0  # length of the line on screen
        self._t0_wall = 0.0
        self._t0_sim = 0.0
        self.updates = 0

    def start(self) -> ProgressLine:
        """Start the display thread (the first line is drawn at once)."""
        self._t0_wall = self._wall()
        self._t0_sim = float(self.controller.now_s)
        self._thread = threading.Thread(target=self._loop, name="edgectl-progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            try:
                self.draw()
            except (OSError, ValueError):
                return  # terminal gone or stream closed: stop drawing, never disturb the run
            if self._stop.wait(self.interval_s):
                return

    def draw(self) -> None:
        """Rewrite the line once with the current figures."""
        elapsed = self._wall() - self._t0_wall
        text = progress_fields(
            self.controller, self.speed, elapsed, float(self.controller.now_s) - self._t0_sim
        )
        columns = shutil.get_terminal_size((80, 24)).columns
        text = text[: max(10, columns - 1)]
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)
        self.updates += 1

    def stop(self) -> None:
        """Stop the thread and erase the line (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
            if self._width:
                try:
                    self.stream.write("\r" + " " * self._width + "\r")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
                self._width = 0

    def __enter__(self) -> ProgressLine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
