"""Opening case files: regular files only, never a link out of the case.

A case is untrusted input, and so is its *shape*: a FIFO named like a hive's
``.LOG1`` blocks ``read()`` forever, a link to ``/dev/zero`` never ends, a
link to ``/etc`` reads the analyst's machine. Every read of a case file goes
through :func:`open_regular`, which opens without following a final link and
without blocking (``O_NOFOLLOW | O_NONBLOCK``), then checks with ``fstat`` on
the descriptor it holds (no check-then-open race) that it is a regular file.
A link is followed only when a ``root`` is given and its target is a regular
file inside that root.

:class:`NotRegularFile` is an :class:`OSError`, so callers that already
report "cannot read: ..." for I/O errors report these the same way.
"""
from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

class ForkGate:
    """Keeps ``fork()`` apart from the native work of the loader's helper
    threads (hashing a block of a file, encoding a Parquet batch): a child
    forked while another thread is inside a C library could inherit that
    library's locks held, with no thread left to release them.

    Native sections may run together; a fork waits until none is running,
    and a section that has not started yet waits for a fork that asked
    first. A plain lock did not give the fork its turn: the hashing thread
    released it and took it again block after block, so the .evtx reader's
    second process was forked only when the whole file was hashed (up to
    0.8 s later, with one core idle, on a 750 MB log)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside = 0  # native sections running
        self._waiting = 0  # forks asked for and not done

    @contextmanager
    def native(self) -> Iterator[None]:
        """Around one piece of native work (keep it short: a fork waits)."""
        with self._cond:
            while self._waiting:
                self._cond.wait()
            self._inside += 1
        try:
            yield
        finally:
            with self._cond:
                self._inside -= 1
                if not self._inside:
                    self._cond.notify_all()

    def fork(self) -> int:
        """``os.fork()`` once no native section runs; raises its OSError."""
        with self._cond:
            self._waiting += 1
            try:
                while self._inside:
                    self._cond.wait()
                pid = os.fork()
            except BaseException:
                self._waiting -= 1
                self._cond.notify_all()
                raise
            if pid == 0:
                # The child has no other thread: nothing runs or waits.
                self._inside = self._waiting = 0
            else:
                self._waiting -= 1
                self._cond.notify_all()
            return pid


#: The loader's one gate (see :class:`ForkGate`).
FORK_GATE = ForkGate()

_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
          | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))


class NotRegularFile(OSError):
    """The path is a FIFO, device, socket, directory or a link we refuse."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({what})", os.fspath(path))
        self.what = what


def describe_mode(mode: int) -> str:
    """What a non-regular ``st_mode`` is, in words for an inventory entry."""
    for test, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "directory")):
        if test(mode):
            return name
    return "regular file" if stat.S_ISREG(mode) else "special file"


def is_regular(path: str | os.PathLike[str]) -> bool:
    """True for a regular file that is not a link; never raises, never blocks."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """True when ``path`` (links resolved) is ``root`` or below it."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def open_regular(path: str | os.PathLike[str],
                 root: str | os.PathLike[str] | None = None) -> BinaryIO:
    """Open a case file for binary reading, refusing anything irregular.

    A final-component link is refused unless ``root`` is given and the link
    resolves to a regular file inside ``root`` (then that file is opened
    with the same checks). Raises :class:`NotRegularFile` or the OSError of
    the open itself (ENOENT, EACCES, ENAMETOOLONG, ELOOP ...).
    """
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno != errno.ELOOP or not os.path.islink(path):
            raise
        if root is None or not inside(path, root):
            raise NotRegularFile(path, "symbolic link leaving the case" if root is not None
                                 else "symbolic link not followed") from None
        return open_regular(os.path.realpath(path))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, describe_mode(st.st_mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | os.PathLike[str], limit: int,
                 root: str | os.PathLike[str] | None = None) -> bytes:
    """At most ``limit`` bytes of a regular file (for companion files such
    as hive logs, whose useful size is bounded by the format)."""
    with open_regular(path, root) as fh:
        return fh.read(limit)


def regular_files(paths: tuple[Path, ...] | list[Path]) -> tuple[Path, ...]:
    """The paths that are regular files (not links, FIFOs, devices)."""
    return tuple(p for p in paths if is_regular(p))
