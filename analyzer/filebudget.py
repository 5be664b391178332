"""Per-file parse budgets: wall time and memory growth.

Streaming parsers keep most files cheap, but one hostile file must never
cost the rest of the case: when a file's parse runs longer than its time
budget or grows the process's resident memory by more than its memory
budget, :class:`BudgetExceeded` is raised *inside* the parse, the case marks
that file ``failed`` with the figure, and goes on with the next file.

Enforcement: on the main thread of a POSIX process an interval timer
(``SIGALRM``, every :data:`TICK` seconds) checks the budget, so a parser
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


@contextmanager
def guard(seconds: float, memory_bytes: int) -> Iterator[Callable[[], None]]:
    """Enforce the budget while the block runs; yields ``check()`` for the
    caller to call between chunks (it raises :class:`BudgetExceeded`)."""
    start = time.monotonic()
    base = rss_bytes()
    state = {"active": True, "rss_at": 0.0}

    def check() -> None:
        if not state["active"]:
            return
        elapsed = time.monotonic() - start
        if elapsed > seconds:
            state["active"] = False
            raise BudgetExceeded(f"parse time limit of {seconds:g} s exceeded "
                                 f"({elapsed:.1f} s)")
        if base is None or elapsed - state["rss_at"] < TICK:
            return  # resident memory is read at most once per tick
        state["rss_at"] = elapsed
        now = rss_bytes()
        if now is not None and now - base > memory_bytes:
            state["active"] = False
            raise BudgetExceeded(f"memory limit of {memory_bytes >> 20} MiB per file exceeded "
                                 f"(resident memory grew by {(now - base) >> 20} MiB)")

    use_timer = (hasattr(signal, "setitimer")
                 and threading.current_thread() is threading.main_thread())
    previous = None
    if use_timer:
        # Another timer already running (an outer guard, a test harness):
        # leave it alone and check between chunks only.
        if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            use_timer = False
    if use_timer:
        previous = signal.signal(signal.SIGALRM, lambda _s, _f: check())
        signal.setitimer(signal.ITIMER_REAL, TICK, TICK)
    try:
        yield check
    finally:
        state["active"] = False
        if use_timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
