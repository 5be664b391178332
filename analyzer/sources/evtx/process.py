"""The second reader process of a large .evtx file.

A large file on a machine with two cores is read by two processes, each
reading a part of its chunk slots: the per-record work is Python-bound (the Rust
parser's own threads measured no faster: building each record's Python
string and dict holds the GIL), so the second core only helps from a second
interpreter.

The child reads its chunk range exactly as the parent reads the first part
(the same :class:`~.rust.RangeReader`), writes each batch as an Arrow IPC
file into a scratch directory (complete files only: written as ``.part``,
then renamed) and its warnings and counts as JSON at the end. The parent
yields its own part while the child works, then memory-maps the child's
batches as they appear, while the child is still reading (no pickling of
rows: sending rows back through a pipe lost the whole parallel gain when
measured). Taking them as they come, instead of after the child's exit,
takes the parent's share of every child batch (enrichment, Parquet
encoding) off the end of the read. A child that dies (killed, out of
memory) is detected by its exit status and the parent reads the rest of
that part itself. The child asks the kernel to kill it when the parent dies
(a batch worker killed for its time limit leaves no orphan).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from ...safeio import FORK_LOCK
from .layout import Layout
from .records import warm
from .rust import RangeReader


class HalfReader:
    """A forked child reading chunk slots ``[first, last)``."""

    #: Seconds between two looks for the child's next batch while it runs.
    POLL = 0.01

    def __init__(self, pid: int, tmp: Path, first: int, last: int, layout: Layout) -> None:
        self.pid: int | None = pid
        self.status: int | None = None  # the child's wait status, once it exited
        self.tmp = tmp
        self.first, self.last, self.layout = first, last, layout

    @classmethod
    def start(cls, path: Path, first: int, last: int, layout: Layout,
              work_dir: Path | None, display: str, source: str) -> HalfReader | None:
        """Fork the child; None when this platform or the moment does not allow it."""
        if not sys.platform.startswith("linux"):
            # fork() of a process with native thread pools is only known to
            # be safe here on Linux (and PR_SET_PDEATHSIG is Linux's).
            return None
        try:
            if work_dir is not None:
                work_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="evtx-half-", dir=work_dir))
        except OSError:
            return None
        parent = os.getpid()
        # What every batch needs is loaded once, here, and inherited.
        warm()
        # Hand Arrow's free pages back to the OS first: pages the allocator
        # keeps for reuse are shared after fork, so every batch either
        # process builds in them costs a copy-on-write fault. Measured on
        # the benchmark file: minor faults per process 37k -> 17k, CPU per
        # half 0.42 -> 0.34 s.
        pa.default_memory_pool().release_unused()
        try:
            # No other thread of the loader is inside native code meanwhile
            # (hashing, Parquet encoding): see analyzer.safeio.FORK_LOCK.
            with FORK_LOCK:
                pid = os.fork()
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        if pid == 0:  # pragma: no cover - runs in the child, reported via its files
            _child(path, first, last, layout, tmp, parent, display, source)
        return cls(pid, tmp, first, last, layout)

    def _reap(self, block: bool) -> bool:
        """Whether the child has exited (its status kept in :attr:`status`)."""
        if self.pid is None:
            return self.status is not None
        pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.pid, self.status = None, status
        return True

    def finish(self) -> RangeReader | None:
        """Wait for the child; its range (warnings, counts), or None when it failed."""
        if not self._reap(block=True):
            return None
        summary = self.tmp / "summary.json"
        if self.status != 0 or not summary.exists():
            return None
        info = json.loads(summary.read_text(encoding="utf-8"))
        rng = RangeReader(Path(), self.first, self.last, self.layout, threads=1)
        rng.warnings = [(m, loc) for m, loc in info["warnings"]]
        rng.read, rng.rec_errors = info["read"], info["rec_errors"]
        rng.chunk_errors, rng.last_text = info["chunk_errors"], info["last_text"]
        rng.max_id = info["max_id"]
        rng.bad_crc = [(idx, what) for idx, what in info["bad_crc"]]
        return rng

    def tables(self) -> Iterator[pa.Table]:
        """The child's batches in order, each as soon as the child has
        written it; ends when the child has exited and its last batch is
        taken. Whether the child succeeded is :meth:`finish`'s to say: a
        child that died leaves only complete batches, the records before
        the point where it stopped."""
        i = 0
        while True:
            f = self.tmp / f"{i:06d}.arrow"
            if f.exists():
                # Memory-mapped: the batch's buffers stay valid after the
                # file is removed (Linux keeps the pages until unmapped).
                yield pa.ipc.open_file(pa.memory_map(str(f))).read_all()
                i += 1
            elif self._reap(block=False):
                if not f.exists():  # renamed between the two looks: take it
                    return
            else:
                time.sleep(self.POLL)

    def close(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            # Killed: what tables() and finish() see from now on.
            self.pid, self.status = None, -signal.SIGKILL
        shutil.rmtree(self.tmp, ignore_errors=True)


def _child(path: Path, first: int, last: int, layout: Layout, tmp: Path, parent: int,
           display: str, source: str) -> None:  # pragma: no cover - runs in the child
    """The child's whole life: read the range, write its files, exit."""
    code = 1
    try:
        _die_with_parent(parent)
        rng = RangeReader(path, first, last, layout, threads=1)
        for i, tbl in enumerate(rng.tables(display, source)):
            part = tmp / f"{i:06d}.part"
            with pa.OSFile(str(part), "wb") as sink, \
                    pa.ipc.new_file(sink, tbl.schema) as writer:
                writer.write_table(tbl)
            # The parent takes a batch once it has its final name.
            os.replace(part, tmp / f"{i:06d}.arrow")
        summary = {"warnings": rng.warnings, "read": rng.read,
                   "rec_errors": rng.rec_errors, "chunk_errors": rng.chunk_errors,
                   "last_text": rng.last_text, "max_id": rng.max_id, "bad_crc": rng.bad_crc}
        (tmp / "summary.part").write_text(json.dumps(summary), encoding="utf-8")
        os.replace(tmp / "summary.part", tmp / "summary.json")
        code = 0
    except BaseException:  # noqa: BLE001 - the parent re-reads this half
        code = 1
    finally:
        os._exit(code)


def _die_with_parent(parent: int) -> None:
    """In a forked child: ask Linux for SIGKILL when the parent dies
    (PR_SET_PDEATHSIG), and leave at once if it is already gone."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)
