"""Windows paths as DCOM registrations and setup logs write them."""
from __future__ import annotations

import re

_PATH_RE = re.compile(r"([a-z]:\\[^<>\"|\r\n;]*?\.exe)", re.IGNORECASE)


def exe_path(command: str) -> str:
    """The executable of a LocalServer32 value or a command line.

    LocalServer32 holds a path, sometimes quoted and followed by arguments
    (``"C:\\...\\empkp.exe" -Embedding``), often in 8.3 form
    (``C:\\PROGRA~1\\Exchsrvr\\bin\\empkp.exe``).
    """
    s = command.strip()
    if s.startswith('"'):
        end = s.find('"', 1)
        return s[1:end] if end > 0 else s[1:]
    m = re.match(r"(.+?\.exe)\b", s, re.IGNORECASE)
    return m.group(1) if m else s.split(" -")[0].split(" /")[0].strip()


def _component_match(a: str, b: str) -> bool:
    if a == b:
        return True
    for x, y in ((a, b), (b, a)):
        m = re.fullmatch(r"([^~]+)~\d+(\.[^.]*)?", x)
        if m and y.replace(" ", "").startswith(m.group(1)):
            return True
    return False


def same_path(a: str, b: str) -> bool:
    """Windows paths equal case-insensitively, allowing 8.3 short names.

    Offline we cannot ask the file system which long name PROGRA~1 stands
    for; a short component matches any long one that starts with its stem.
    """
    pa_ = [c for c in re.split(r"[\\/]+", exe_path(a).lower()) if c]
    pb = [c for c in re.split(r"[\\/]+", exe_path(b).lower()) if c]
    return len(pa_) == len(pb) and all(_component_match(x, y) for x, y in zip(pa_, pb))


def path_in(text: str, exe: str) -> str | None:
    """The first ``X:\\...\\<exe>`` path in a setup log line."""
    for m in _PATH_RE.finditer(text or ""):
        if m.group(1).lower().endswith("\\" + exe):
            return m.group(1)
    return None
