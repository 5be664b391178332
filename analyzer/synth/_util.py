"""Small helpers shared by the synthetic Windows file writers.

Standard library only: these writers exist because no Windows machine is
available and no public library *writes* .evt/.evtx/regf files.
"""

from __future__ import annotations

import io
import os
import struct
from datetime import datetime, timezone
from typing import BinaryIO, Union

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO]
TimeLike = Union[datetime, int, float]

#: Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01 (POSIX epoch).
_FILETIME_EPOCH_DELTA_S = 11_644_473_600


def as_utc(value: TimeLike) -> datetime:
    """Return ``value`` as an aware UTC datetime.

    Naive datetimes are taken to be UTC: Windows stores all event/registry
    times in UTC, and a local-time interpretation would make the output depend
    on the machine's time zone (breaking determinism).
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    raise TypeError(f"expected datetime or POSIX seconds, got {type(value).__name__}")


def to_posix_seconds(value: TimeLike) -> int:
    """POSIX seconds (uint32) as stored by the legacy .evt format."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = int(value)
    else:
        dt = as_utc(value)
        secs = int((dt - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() // 1)
    if not 0 <= secs <= 0xFFFFFFFF:
        raise ValueError(f"time {value!r} does not fit a 32-bit POSIX timestamp")
    return secs


def to_filetime(value: TimeLike) -> int:
    """FILETIME: 100 ns intervals since 1601-01-01 UTC (exact, no float rounding)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = as_utc(value)
    dt = as_utc(value)
    delta = dt - datetime(1601, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def sid_to_bytes(sid: str) -> bytes:
    """Encode a textual SID (``S-1-5-21-...``) in its binary NT form.

    Layout: revision (1), sub-authority count (1), 48-bit identifier authority
    (big-endian!), then little-endian uint32 sub-authorities.
    """
    parts = sid.strip().upper().split("-")
    if len(parts) < 3 or parts[0] != "S":
        raise ValueError(f"not a SID: {sid!r}")
    revision = int(parts[1])
    authority = int(parts[2], 0)
    subs = [int(p) for p in parts[3:]]
    if len(subs) > 15:
        raise ValueError(f"too many sub-authorities in SID {sid!r}")
    return (
        struct.pack("<BB", revision, len(subs))
        + authority.to_bytes(6, "big")
        + b"".join(struct.pack("<I", s) for s in subs)
    )


def utf16(text: str, terminate: bool = True) -> bytes:
    """UTF-16LE without BOM, optionally NUL-terminated (as Windows stores it)."""
    data = text.encode("utf-16-le")
    return data + b"\x00\x00" if terminate else data


def pad_to(data: bytes, alignment: int, fill: bytes = b"\x00") -> bytes:
    rem = len(data) % alignment
    return data if rem == 0 else data + fill * (alignment - rem)


def emit(target: PathOrFile, data: bytes) -> None:
    """Write ``data`` to a path or to a binary file object."""
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as fh:
            fh.write(data)
    elif isinstance(target, (io.IOBase,)) or hasattr(target, "write"):
        target.write(data)
    else:  # pragma: no cover - defensive
        raise TypeError(f"cannot write to {type(target).__name__}")
