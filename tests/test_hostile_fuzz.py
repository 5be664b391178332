"""Property-based fuzzing of every format family through ``load_case``.

tests/test_robustness.py holds the fixed seed corpus of mutants (recipes
that can be rebuilt by hand); this module adds generators: hypothesis
builds inputs per format family (line-oriented text exports, event XML,
archives, binary logs and hives) from the project's fixtures and writers,
mutates them structurally (inserted, duplicated, cut and over-long lines,
foreign encodings, hostile member names, random bytes at random offsets)
and loads each as a case. Properties, for every example:

- no exception escapes ``load_case``; every file is in the inventory with
  a status, and the table is valid;
- no file exceeds its parse time budget (``Limits.file_seconds``: a file
  over it would be ``failed`` with "time limit" in its detail);
- resident memory stays bounded (``Limits.file_memory_bytes`` per file, and
  the process's resident set after the example).

The ``exa-fuzz`` profile is derandomized (the same examples on every run)
with a fixed number of examples per family and no per-example deadline
(the file budget is the deadline), so the module runs in well under a minute.
Set ``EXA_FUZZ_EXAMPLES`` to run more.
"""
from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from analyzer.archive import Limits  # noqa: E402
from analyzer.case import load_case  # noqa: E402
from analyzer.filebudget import rss_bytes  # noqa: E402
from analyzer.table import validate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"

settings.register_profile(
    "exa-fuzz", deadline=None, derandomize=True, database=None,
    max_examples=int(os.environ.get("EXA_FUZZ_EXAMPLES", "120")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])
FUZZ = settings.get_profile("exa-fuzz")

#: Budgets every fuzzed file must stay within.
LIMITS = Limits(file_seconds=15.0, file_memory_bytes=512 << 20, max_line_chars=1 << 16)
#: Resident memory the process may grow by over the whole module.
RSS_HEADROOM = 1 << 30
STATUSES = {"parsed", "partial", "failed", "skipped", "rejected"}
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")

TEXT_FIXTURES = sorted(p for d in ("text", "reg", "eventtext") for p in (FIXTURES / d).glob("*")
                       if p.is_file())
_START_RSS = rss_bytes()


def _check(case_dir: Path) -> None:
    case = load_case(case_dir, limits=LIMITS)
    assert case.inventory, "nothing inventoried"
    for e in case.inventory:
        assert e.status in STATUSES, e
        assert not (e.detail and ("time limit" in e.detail or "memory limit" in e.detail)), e
        if e.status in ("failed", "rejected", "partial"):
            assert e.detail, e
    validate(case.table)
    now = rss_bytes()
    if now is not None and _START_RSS is not None:
        assert now - _START_RSS < RSS_HEADROOM, f"resident memory grew by {(now - _START_RSS) >> 20} MiB"


# --- generators ----------------------------------------------------------------

_hostile_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@st.composite
def text_export(draw) -> tuple[str, bytes]:
    """A fixture of a line-oriented format, mutated line by line."""
    src = draw(st.sampled_from(TEXT_FIXTURES))
    lines = src.read_bytes().decode("utf-8", "replace").splitlines()
    for _ in range(draw(st.integers(0, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["insert", "replace", "dup", "cut", "long", "split"]))
        if op == "insert":
            lines.insert(i, draw(_hostile_text))
        elif op == "replace":
            lines[i] = draw(_hostile_text)
        elif op == "dup":
            j = draw(st.integers(i, min(len(lines), i + 50)))
            lines[i:i] = lines[i:j] * draw(st.integers(1, 20))
        elif op == "cut":
            lines = lines[:i] + [lines[i][: draw(st.integers(0, max(0, len(lines[i]))))]]
        elif op == "long":
            lines[i] = lines[i] + draw(st.sampled_from(["x", "\\", ",", "<", "\t"])) * draw(
                st.integers(1000, 200_000))
        else:
            lines[i:i + 1] = [lines[i][:k] for k in (len(lines[i]) // 2,)] + [lines[i][len(lines[i]) // 2:]]
    eol = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol]))
    enc = draw(st.sampled_from(["utf-8", "utf-16", "cp1252", "utf-8-sig"]))
    return src.name, text.encode(enc, "replace")


_XML_TOKENS = list("ab<>&;\"' \n]-!?x") + ["&amp;", "&#0;", "&l9;", "<![CDATA[", "]]>", "\u202e",
                                          "<!--", "-->", "</Data>", "<Event>"]
_xml_text = st.lists(st.sampled_from(_XML_TOKENS), max_size=30).map("".join)


@st.composite
def event_xml(draw) -> bytes:
    """Event XML exports: valid events, junk, DTDs, entities, cut ends."""
    parts = [draw(st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>\n']))]
    if draw(st.booleans()):
        parts.append('<!DOCTYPE Events [<!ENTITY l0 "lol"><!ENTITY l9 "&l0;&l0;&l0;">]>\n')
    parts.append(draw(st.sampled_from(["<Events>", ""])))
    for n in range(draw(st.integers(0, 12))):
        depth = draw(st.integers(0, 30))
        body = "<x>" * depth + draw(_xml_text) + "</x>" * draw(st.integers(0, depth))
        parts.append(
            '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
            f'<Provider Name="{draw(_xml_text)[:20]}"/><EventID>{draw(st.integers(-5, 70000))}</EventID>'
            f'<TimeCreated SystemTime="{draw(st.sampled_from(["2023-01-01T00:00:00Z", "x", ""]))}"/>'
            f'<EventRecordID>{n}</EventRecordID></System><EventData><Data Name="{draw(_xml_text)[:10]}">'
            f'{body}</Data></EventData></Event>')
        if draw(st.booleans()):
            parts.append(draw(_xml_text))
    parts.append(draw(st.sampled_from(["</Events>", ""])))
    raw = "".join(parts).encode("utf-8", "replace")
    return raw[: draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw


_member_name = st.one_of(
    st.sampled_from(["a.txt", "../../x.txt", "/abs.txt", "C:\\w.txt", "d/../../e.txt", "`x`.txt",
                     "x" * 300, "ä" * 200 + ".txt", "a\x00b", "dir/", "f\u202e.txt", "a/b/c/d.txt"]),
    st.text(min_size=1, max_size=40))


@st.composite
def archive_file(draw) -> tuple[str, bytes]:
    """zip or tar of fixture members under hostile names, possibly cut."""
    members = [(draw(_member_name), draw(st.sampled_from(TEXT_FIXTURES)).read_bytes())
               for _ in range(draw(st.integers(1, 5)))]
    buf = io.BytesIO()
    kind = draw(st.sampled_from(["zip", "tar", "tar.gz"]))
    if kind == "zip":
        method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]))
        with zipfile.ZipFile(buf, "w", compression=method) as zf:
            for name, data in members:
                try:
                    zf.writestr(name, data)
                except (ValueError, UnicodeEncodeError):
                    zf.writestr("fallback.txt", data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz" if kind == "tar.gz" else "w") as tf:
            for name, data in members:
                info = tarfile.TarInfo("placeholder")
                info.pax_headers = {"path": name}
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(1, len(raw)))]
    return f"upload.{kind}", raw


def _binary_seeds() -> list[tuple[str, bytes]]:
    """The seed files of the mutation corpus (tests/test_robustness.py)."""
    from test_robustness import _synth_evt, _synth_evtx, _synth_hive

    return [("SOFTWARE", _synth_hive()), ("Application.evtx", _synth_evtx()),
            ("AppEvent.Evt", _synth_evt())]


@st.composite
def binary_log(draw) -> tuple[str, bytes]:
    """A hive, an .evtx or an .evt from the project's writers, with random
    bytes overwritten, a block duplicated or the end cut."""
    name, raw = draw(st.sampled_from(_BINARY))
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["bytes", "ff", "zero", "dup", "cut"]))
        if op == "bytes":
            piece = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(piece)] = piece
        elif op == "ff":
            data[at:at + 4] = b"\xff\xff\xff\x7f"
        elif op == "zero":
            data[at:at + 512] = bytes(min(512, len(data) - at))
        elif op == "dup":
            data[at:at] = data[at:at + draw(st.integers(1, 4096))]
        else:
            del data[max(1, at):]
    return name, bytes(data)


try:
    _BINARY = _binary_seeds()
except Exception:  # noqa: BLE001 - writers' options changed: the family is skipped below
    _BINARY = []


# --- properties ------------------------------------------------------------------

def _load(tmp_path_factory, name: str, raw: bytes) -> None:
    """The generated file alone in a fresh case folder, loaded and checked."""
    d = tmp_path_factory.mktemp("fuzz")
    (d / name).write_bytes(raw)
    _check(d)


@FUZZ
@given(text_export())
def test_fuzz_text_exports(tmp_path_factory, example) -> None:
    _load(tmp_path_factory, *example)


@FUZZ
@given(event_xml())
def test_fuzz_event_xml(tmp_path_factory, raw) -> None:
    _load(tmp_path_factory, "export.xml", raw)


@FUZZ
@given(archive_file())
def test_fuzz_archives(tmp_path_factory, example) -> None:
    _load(tmp_path_factory, *example)


@pytest.mark.skipif(not _BINARY, reason="synth writers unavailable")
@FUZZ
@given(binary_log())
def test_fuzz_binary_logs_and_hives(tmp_path_factory, example) -> None:
    _load(tmp_path_factory, *example)
