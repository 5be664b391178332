"""Every fixture of every format, sniffed by ALL registered sources (binary
ones included): the format's own source wins. Together with
test_sniffers_cross.py this keeps one format's sniffer off another's files."""
from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import sources
from analyzer.textio import read_head

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

OWNERS = {
    "eventtext/eventviewer_export.xml": "eventxml",
    "eventtext/wevtutil_qe.xml": "eventxml",
    "eventtext/getwinevent_exportcsv.csv": "eventcsv",
    "eventtext/getwinevent_select.csv": "eventcsv",
    "eventtext/saveas2003.csv": "eventcsv",
    "eventtext/saveas2003.txt": "eventcsv",
    "eventtext/vista_saveas.csv": "eventcsv",
    "eventtext/kb828938_seed004.txt": "eventtext",
    "eventtext/kb_blocks.txt": "eventtext",
    "eventtext/mom2005_console_seed000.txt": "eventtext",
    "eventtext/vista_copy_details.txt": "eventtext",
    "eventtext/wevtutil_text.txt": "eventtext",
    "eventtext/not_export.reg": "regfile",
    "eventtext/not_msgtrk.log": "tracking",
    "eventtext/not_netstat.txt": "netstat",
    "eventtext/not_rpcdump.txt": "rpcdump",
    "eventtext/not_setup_progress.log": "setuplog",
    "eventdata/kb_blocks.txt": "eventtext",
    "eventdata/saveas2003.csv": "eventcsv",
    "eventdata/saveas2003.txt": "eventcsv",
    "eventdata/copy_details.txt": "eventtext",
    "eventdata/wevtutil_text.txt": "eventtext",
    "eventdata/wevtutil_qe.xml": "eventxml",
    "eventdata/getwinevent.csv": "eventcsv",
    "eventdata/vista_saveas.csv": "eventcsv",
    "reg/exmpls_v5_utf16.reg": "regfile",
    "reg/kb_regedit4_junk.reg": "regfile",
    "reg/system_select2.reg": "regfile",
}


def test_every_fixture_is_listed():
    on_disk = {p.relative_to(FIXTURES).as_posix() for d in ("eventtext", "eventdata", "reg")
               for p in (FIXTURES / d).iterdir() if p.suffix != ".md"}
    assert on_disk == set(OWNERS)


@pytest.mark.parametrize("rel", sorted(OWNERS))
def test_owner_wins(rel):
    path = FIXTURES / rel
    best, score = sources.sniff(read_head(path), path.name)
    assert best is not None and best.name == OWNERS[rel], (best and best.name, score)
    # And no other source is as sure.
    runners = {s.name: s.sniff(read_head(path), path.name) for s in sources.registered()
               if s.name != OWNERS[rel]}
    assert max(runners.values()) < score, runners


@pytest.mark.parametrize("rel", sorted(OWNERS))
def test_renamed_file_is_still_recognized(rel, tmp_path):
    """Customers rename files: content decides, not the name."""
    path = FIXTURES / rel
    best, _ = sources.sniff(read_head(path), "output (2).log")
    assert best is not None and best.name == OWNERS[rel]
