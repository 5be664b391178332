"""The gate between fork() and the loader's native work (analyzer/safeio.py):
a fork never happens inside a native section, gets its turn even while
another thread enters sections back to back, and leaves the child free to
use the gate."""
from __future__ import annotations

import os
import threading
import time

import pytest

from analyzer.safeio import ForkGate

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")

#: Liveness bound only (a fork that never comes would hang the test).
PATIENCE_S = 20.0


def _wait_child(pid: int) -> int:
    """The child's exit code; the child is killed if it does not exit."""
    end = time.monotonic() + PATIENCE_S
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -9


def test_a_fork_gets_its_turn_between_back_to_back_sections():
    """A thread that leaves a section and enters the next at once (as the
    hashing thread does, block after block) does not keep the fork out, and
    the fork never happens while that thread is inside a section."""
    gate = ForkGate()
    stop = threading.Event()
    inside = threading.Event()
    state = {"in": False, "sections": 0, "forked_inside": None}

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
    result: dict[str, int] = {}

    def forker() -> None:
        pid = gate.fork()
        if pid == 0:  # the child: enters and leaves the gate, then exits
            with gate.native():
                pass
            os._exit(7)
        state["forked_inside"] = state["in"]
        result["pid"] = pid

    f = threading.Thread(target=forker, daemon=True)
    f.start()
    f.join(PATIENCE_S)
    stop.set()
    worker.join(PATIENCE_S)
    assert "pid" in result, "the fork never got its turn"
    assert state["forked_inside"] is False
    assert _wait_child(result["pid"]) == 7, "the child could not use the gate"
    # The hashing thread went on after the fork.
    assert state["sections"] > 1


def test_sections_run_together_and_a_waiting_fork_comes_first():
    """Two native sections may be inside at once; a section asked for while
    a fork waits starts only after that fork."""
    gate = ForkGate()
    order: list[str] = []
    first_in = threading.Event()
    release_first = threading.Event()

    def long_section() -> None:
        with gate.native():
            first_in.set()
            release_first.wait(PATIENCE_S)
            order.append("first out")

    t1 = threading.Thread(target=long_section)
    t1.start()
    assert first_in.wait(PATIENCE_S)
    with gate.native():  # a second section while the first is inside
        order.append("second in and out")

    pids: list[int] = []

    def forker() -> None:
        pid = gate.fork()
        if pid == 0:
            os._exit(0)
        order.append("forked")
        pids.append(pid)

    fork_thread = threading.Thread(target=forker)
    fork_thread.start()
    while not gate._waiting:  # the fork now waits for the first section
        time.sleep(0.001)

    def late_section() -> None:
        with gate.native():
            order.append("late in")

    late = threading.Thread(target=late_section)
    late.start()
    release_first.set()
    for t in (t1, fork_thread, late):
        t.join(PATIENCE_S)
    assert order == ["second in and out", "first out", "forked", "late in"]
    assert _wait_child(pids[0]) == 0
