"""What a file no parser reads actually is: a PDF, an image, an e-mail...

Customers upload whatever they have; a report that says "unrecognized
binary" about a PDF renamed ``netstat.txt`` makes the engineer open it to
find out. The identification is puremagic's (a maintained, pure-Python
file-type database read from the content only, never the name: a renamed
file is named by what it is). Only the grouping into the few kinds an
engineer acts on is ours.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: puremagic scores a match by the length of the bytes it matched (two
#: bytes give 0.2, nine or more 0.8). A match names a file when it falls in
#: one of the kinds below with at least MIN_KIND_CONFIDENCE (a text that
#: happens to start with "BM" is not a bitmap), or with MIN_CONFIDENCE
#: otherwise.
MIN_KIND_CONFIDENCE = 0.3
MIN_CONFIDENCE = 0.4

#: (kind, label) by MIME type prefix, first match wins.
_BY_MIME: tuple[tuple[str, str, str], ...] = (
    ("application/pdf", "pdf", "PDF document"),
    ("image/", "image", "image"),
    ("audio/", "media", "audio file"),
    ("video/", "media", "video file"),
    ("message/", "e-mail", "e-mail message"),
    ("application/vnd.ms-outlook", "e-mail", "Outlook item"),
    ("application/msword", "office-document", "Office document"),
    ("application/vnd.ms-", "office-document", "Office document"),
    ("application/vnd.openxmlformats-officedocument", "office-document", "Office document"),
    ("application/vnd.oasis.opendocument", "office-document", "OpenDocument file"),
    ("application/rtf", "office-document", "RTF document"),
    ("application/vnd.microsoft.portable-executable", "executable", "Windows executable"),
    ("application/x-dosexec", "executable", "Windows executable"),
    ("application/x-msdownload", "executable", "Windows executable"),
    ("application/x-executable", "executable", "executable"),
    ("text/html", "web-page", "web page (HTML)"),
    ("application/xhtml", "web-page", "web page (HTML)"),
    ("application/xml", "xml", "XML document"),
    ("text/xml", "xml", "XML document"),
)


@dataclass(frozen=True)
class FileKind:
    """A file's kind (an inventory ``kind``) and a human description."""

    kind: str
    label: str
    name: str  # the file-type database's own name for it

    @property
    def description(self) -> str:
        return f"{self.label} ({self.name})" if self.name and self.name != self.label else self.label


def identify(path: str | Path) -> FileKind | None:
    """The kind of the file at ``path`` from its content (head and tail
    only: bounded reads), or None when the database does not know it."""
    import puremagic

    try:
        with open(path, "rb") as fh:
            matches = puremagic.magic_stream(fh)
    except (puremagic.PureError, ValueError, OSError):
        return None
    for m in matches:
        if m.confidence < MIN_KIND_CONFIDENCE:
            break
        for prefix, kind, label in _BY_MIME:
            if (m.mime_type or "").lower().startswith(prefix):
                return FileKind(kind, label, m.name)
    if matches and matches[0].confidence >= MIN_CONFIDENCE:
        top = matches[0]
        if "executable" in top.name.lower():  # ELF, Mach-O: no MIME type in the database
            return FileKind("executable", "executable", top.name)
        return FileKind("other", top.name, top.name)
    return None
