"""Sample cases, generated from declarative scenario descriptions.

Each module in this package (one per diagnosis: ``mom9986``, ``rpc_ports``,
``smtp_mailbox``) lists :class:`Scenario` objects. A scenario writes a
Windows-shaped case folder (real binary formats from :mod:`analyzer.synth`,
CRLF text, realistic hosts and times, plenty of unrelated noise) and states
the findings a correct analyzer must produce in ``expected.json``.

``python -m scenarios samples/`` regenerates the committed
``samples/`` tree; a test checks the committed files equal what the
generator produces, so samples never drift from their descriptions.
Generation is deterministic: fixed times, seeded noise, fixed zip metadata.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Expect", "Scenario", "all_scenarios", "build", "regenerate", "write_text", "zip_tree"]


@dataclass(frozen=True)
class Expect:
    """One expected finding: the check, its status and the top cause id."""

    check: str
    status: str
    top_cause: str | None = None
    #: Open issue that owns this expectation; the sample test marks it
    #: xfail (naming the issue) while that check is not implemented.
    issue: int | None = None
    #: The case host the finding is about, where a case holds several.
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"check": self.check, "status": self.status,
                             "top_cause": self.top_cause}
        if self.host is not None:
            d["host"] = self.host
        if self.issue is not None:
            d["issue"] = self.issue
        return d


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    #: Writes the case's files into the given (empty) folder.
    build: Callable[[Path], None]
    expected: tuple[Expect, ...] = field(default_factory=tuple)
    #: The machines of the case, as the report's hosts list must name them
    #: (peers named only inside a log are not hosts); None: not stated.
    hosts: tuple[str, ...] | None = None
    #: Inventory statuses that must hold, by case-relative path.
    inventory: dict[str, str] = field(default_factory=dict)
    #: The exit code of ``analyze`` (0 no problem, 1 problem, 3 no verdict);
    #: None: follows the findings.
    exit_code: int | None = None
    #: What the analyzer still lacks to meet this expectation: while set,
    #: the sample test expects a mismatch (and fails once there is none).
    pending: str | None = None


def write_text(path: Path, text: str, encoding: str = "utf-8", crlf: bool = True,
               bom: bool = False) -> None:
    """Write a Windows-shaped text file (CRLF by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = text.replace("\r\n", "\n")
    if crlf:
        body = body.replace("\n", "\r\n")
    data = body.encode(encoding)
    if bom and encoding.lower().replace("-", "") in ("utf16le", "utf16"):
        data = b"\xff\xfe" + body.encode("utf-16-le")
    elif bom and encoding.lower().replace("-", "") == "utf8":
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)


def zip_tree(folder: Path, dest: Path) -> None:
    """Zip a folder deterministically (sorted names, fixed timestamps)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(p.relative_to(folder).as_posix(),
                                       date_time=(2007, 3, 14, 9, 30, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, p.read_bytes())


def all_scenarios() -> list[Scenario]:
    """Every scenario of every module, in module then list order."""
    out: list[Scenario] = []
    seen: set[str] = set()
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_") or mod.name == "noise":
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        for sc in getattr(module, "SCENARIOS", ()):
            if sc.name in seen:
                raise ValueError(f"duplicate scenario name {sc.name!r}")
            seen.add(sc.name)
            out.append(sc)
    return out


def build(scenario: Scenario, out_dir: Path) -> Path:
    """Write one scenario's case folder plus expected.json and README.txt."""
    target = out_dir / scenario.name
    if target.exists():
        shutil.rmtree(target)
    case_dir = target / "case"
    case_dir.mkdir(parents=True)
    scenario.build(case_dir)
    expected: dict[str, Any] = {"scenario": scenario.name, "description": scenario.description,
                                "findings": [e.to_dict() for e in scenario.expected]}
    if scenario.hosts is not None:
        expected["hosts"] = list(scenario.hosts)
    if scenario.inventory:
        expected["inventory"] = dict(scenario.inventory)
    if scenario.exit_code is not None:
        expected["exit_code"] = scenario.exit_code
    if scenario.pending:
        expected["pending"] = scenario.pending
    (target / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    return target


def regenerate(samples_dir: Path) -> list[Path]:
    """Rebuild every sample into ``samples_dir`` (atomically per scenario)."""
    samples_dir.mkdir(parents=True, exist_ok=True)
    built = []
    with tempfile.TemporaryDirectory(prefix="exa-samples-") as tmp:
        for sc in all_scenarios():
            staged = build(sc, Path(tmp))
            final = samples_dir / sc.name
            if final.exists():
                shutil.rmtree(final)
            shutil.move(str(staged), final)
            built.append(final)
    return built
