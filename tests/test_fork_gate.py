"""The gate between fork() and the loader's native work (analyzer/safeio.py):
a fork never happens inside a native section, gets its turn even while
another thread enters sections back to back, and leaves the child free to
use the gate. The fork is made from the main thread, as the .evtx reader
makes it; the child reports what it saw at the fork through its exit code."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from analyzer.safeio import ForkGate

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGALRM"),
                                reason="needs fork() and SIGALRM")

#: Liveness bound only (a fork that never comes would hang the test).
PATIENCE_S = 20


@contextlib.contextmanager
def _deadline() -> Iterator[None]:
    """Raise TimeoutError in the main thread if the block has not ended
    after :data:`PATIENCE_S` (a lock wait is interrupted by the signal)."""
    def expired(_sig, _frame):
        raise TimeoutError("no progress")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(PATIENCE_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _wait_child(pid: int) -> int:
    """The child's exit code; the child is killed if it does not exit."""
    end = time.monotonic() + PATIENCE_S
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -signal.SIGKILL


def test_a_fork_gets_its_turn_between_back_to_back_sections():
    """A thread that leaves a section and enters the next at once (as the
    hashing thread does, block after block) does not keep the fork out, the
    fork never happens while that thread is inside a section, and the
    child can use the gate."""
    gate = ForkGate()
    stop = threading.Event()
    inside = threading.Event()
    state = {"in": False, "sections": 0}

    def hasher() -> None:
        while not stop.is_set():
            with gate.native():
                state["in"] = True
                inside.set()
                time.sleep(0.002)
                state["in"] = False
                state["sections"] += 1

    worker = threading.Thread(target=hasher, daemon=True)
    worker.start()
    assert inside.wait(PATIENCE_S)
    try:
        with _deadline():
            pid = gate.fork()
        if pid == 0:  # the child: what it saw at the fork, then the gate
            code = 8 if state["in"] else 7
            with gate.native():
                pass
            os._exit(code)
        before = state["sections"]
        while state["sections"] == before:  # the hashing thread goes on
            time.sleep(0.001)
    finally:
        stop.set()
        worker.join(PATIENCE_S)
    assert _wait_child(pid) == 7


def test_sections_run_together_and_a_waiting_fork_comes_first():
    """Two native sections may be inside at once; the fork waits for the
    one still inside; a section asked for while the fork waits starts only
    after the fork."""
    gate = ForkGate()
    order: list[str] = []
    first_in = threading.Event()
    release_first = threading.Event()
    late_in = threading.Event()

    def long_section() -> None:
        with gate.native():
            first_in.set()
            release_first.wait(PATIENCE_S)
            order.append("first out")

    def late_section() -> None:
        with gate.native():
            late_in.set()

    def when_the_fork_waits() -> None:
        while not gate._waiting:
            time.sleep(0.001)
        late = threading.Thread(target=late_section, daemon=True)
        late.start()
        late.join(0.2)  # it must still be waiting for the fork
        release_first.set()

    t1 = threading.Thread(target=long_section, daemon=True)
    t1.start()
    assert first_in.wait(PATIENCE_S)
    with gate.native():  # a second section while the first is inside
        order.append("second in and out")
    helper = threading.Thread(target=when_the_fork_waits, daemon=True)
    helper.start()
    with _deadline():
        pid = gate.fork()
    if pid == 0:
        os._exit(0 if order == ["second in and out", "first out"] and not late_in.is_set()
                 else 1)
    assert _wait_child(pid) == 0
    assert late_in.wait(PATIENCE_S)
    for t in (t1, helper):
        t.join(PATIENCE_S)
