"""Per-file parse budgets: wall time and memory growth.

Streaming parsers keep most files cheap, but one hostile file must never
cost the rest of the case: when a file's parse runs longer than its time
budget or grows the process's resident memory by more than its memory
budget, :class:`BudgetExceeded` is raised *inside* the parse, the case marks
that file ``failed`` with the figure, and goes on with the next file.

Enforcement: on the main thread of a POSIX process an interval timer
(``SIGALRM``, every :data:`TICK` seconds, one per case: :class:`Guard`)
checks the budget of the file being parsed, so a parser
busy in a long loop that never yields a row is interrupted too (a single
long C call is interrupted when it returns). Elsewhere (a notebook's worker
thread) the budget is checked between the chunks a parser yields.
Resident memory is read from ``/proc/self/statm``; where that is missing the
memory budget is not enforced (the time budget still is).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Seconds between two checks of the interval timer.
TICK = 0.2

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class BudgetExceeded(Exception):
    """A file's parse went over its time or memory budget (message has the figure)."""


def rss_bytes() -> int | None:
    """Resident set size of this process now, or None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class Guard:
    """The budgets of one case's files: one interval timer for the whole
    case (installed on entering, removed on leaving), and :meth:`file`
    around each parse, so a folder of 50,000 small files does not pay a
    timer set-up per file."""

    def __init__(self, seconds: float, memory_bytes: int) -> None:
        self.seconds, self.memory_bytes = seconds, memory_bytes
        self._start: float | None = None
        self._base: int | None = None
        self._rss_at = 0.0
        self._timer = False
        self._previous = None

    def __enter__(self) -> Guard:
        self._timer = (hasattr(signal, "setitimer")
                       and threading.current_thread() is threading.main_thread()
                       # another timer running (an outer guard, a test
                       # harness): leave it alone, check between chunks only
                       and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
        if self._timer:
            self._previous = signal.signal(signal.SIGALRM, lambda _s, _f: self.check())
            # restart interrupted system calls: a C library reading the file
            # (libregf, the evtx reader) must not see EINTR as an I/O error
            signal.siginterrupt(signal.SIGALRM, False)
            signal.setitimer(signal.ITIMER_REAL, TICK, TICK)
        return self

    def __exit__(self, *exc: object) -> None:
        self._start = None
        if self._timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._timer = False

    @contextmanager
    def file(self) -> Iterator[Callable[[], None]]:
        """The budget of one file's parse; yields ``check()`` for the caller
        to call between chunks (it raises :class:`BudgetExceeded`)."""
        self._base = rss_bytes()
        self._rss_at = 0.0
        self._start = time.monotonic()
        try:
            yield self.check
        finally:
            self._start = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Work done inside a file's parse that is not the file's (writing
        other files' pooled rows): not counted, never interrupted."""
        start, self._start = self._start, None
        began = time.monotonic()
        try:
            yield
        finally:
            if start is not None:
                self._start = start + (time.monotonic() - began)

    def check(self) -> None:
        start = self._start
        if start is None:
            return
        elapsed = time.monotonic() - start
        if elapsed > self.seconds:
            self._start = None
            raise BudgetExceeded(f"parse time limit of {self.seconds:g} s exceeded "
                                 f"({elapsed:.1f} s)")
        if self._base is None or elapsed - self._rss_at < TICK:
            return  # resident memory is read at most once per tick
        self._rss_at = elapsed
        now = rss_bytes()
        if now is not None and now - self._base > self.memory_bytes:
            self._start = None
            raise BudgetExceeded(f"memory limit of {self.memory_bytes >> 20} MiB per file "
                                 f"exceeded (resident memory grew by {(now - self._base) >> 20} MiB)")
