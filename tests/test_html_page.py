"""The HTML case page, rendered by a real browser (headless Chromium).

Every sample's page is loaded by one Chromium driven over the DevTools
protocol (tests/browser.py); the DOM it builds is checked against the JSON
report (status cells, evidence rows, timeline points), its Network events
prove the page requested nothing but itself, and screenshots of a problem
and a healthy sample are written for a look (their paths are printed;
``EXA_SCREENSHOT_DIR`` keeps them somewhere stable). Skipped when no
Chromium is installed (CI installs it: .ci/run).
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from lxml import html as lxml_html

from analyzer.render import render
from analyzer.report import analyze
from browser import BROWSER, Browser
from scenarios import all_scenarios

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
NAMES = sorted(s.name for s in all_scenarios())
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (CI installs it)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if BROWSER is None:
        pytest.skip("no Chromium installed (CI installs it)")
    b = Browser(tmp_path_factory.mktemp("profile"))
    yield b
    b.close()


def fetched(requests: list[dict]) -> list[str]:
    """URLs a page asked for that the browser did not refuse, other than the
    page itself (a file:// URL)."""
    return [r["request"]["url"] for r in requests
            if not r["blocked"] and not r["request"]["url"].startswith("file:")]


def _page(report: dict, folder: Path, name: str) -> Path:
    page = folder / f"{name}.html"
    page.write_text(render(report, "html"), encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def rendered(browser, tmp_path_factory) -> dict:
    """Every sample's page as Chromium built it, with the requests it made."""
    root = tmp_path_factory.mktemp("pages")
    out = {}
    for name in NAMES:
        report = analyze(SAMPLES / name / "case").to_dict()
        dom, requests = browser.load(_page(report, root, name))
        out[name] = (report, lxml_html.fromstring(dom), requests)
    return out


def _unique(evidence: list[dict]) -> int:
    return len({(e["path"], e["locator"]) for e in evidence})


@needs_browser
@pytest.mark.parametrize("name", NAMES)
def test_page_dom_matches_report(rendered, name: str) -> None:
    report, dom, requests = rendered[name]
    assert len(requests) == 1 and fetched(requests) == []  # the page itself, nothing else
    # Status table: one coloured, labelled cell per (host, check) finding.
    cells = dom.xpath("//table[@class='status']//td[contains(@class,'status ')]")
    want = {(f["host"] or "", f["check"]): f["status"] for f in report["findings"]}
    assert len(cells) == len(want)
    labels = {"problem": "PROBLEM", "inconclusive": "INCONCLUSIVE", "ok": "OK", "not_applicable": "N/A"}
    assert sorted(c.get("data-status") for c in cells) == sorted(want.values())
    assert all(c.xpath("string(./a)") == labels[c.get("data-status")] for c in cells)
    # One article per finding; evidence rows = distinct records per table.
    articles = dom.xpath("//article[contains(@class,'finding')]")
    assert len(articles) == len(report["findings"])
    for art, f in zip(articles, report["findings"]):
        live = [c for c in f["causes"] if c["verdict"] != "ruled_out"]
        tables = art.xpath(".//table[@class='evidence']")
        expected = [_unique(c["evidence"]) for c in live if c["evidence"]]
        # the finding's own evidence, less what its causes already show
        shown = {(e["path"], e["locator"]) for c in live for e in c["evidence"]}
        further = _unique([e for e in f["evidence"] if (e["path"], e["locator"]) not in shown])
        expected += [further] if further else []
        assert [len(t.xpath(".//tr[@class='evidence']")) for t in tables] == expected
        folded = art.xpath(".//details[@class='ruled-out']//li")
        assert len(folded) == len(f["causes"]) - len(live)
    # Timeline: one mark per distinct timestamped record.
    stamped = {(e["path"], e["locator"]) for f in report["findings"]
               for e in f["evidence"] + [x for c in f["causes"] for x in c["evidence"]] if e["ts"]}
    assert len(dom.xpath("//svg//*[contains(@class,'tl-point')]")) == len(stamped)
    assert len(dom.xpath("//tr[@class='tl-row']")) == len(stamped)
    # Inventory: every file with its status.
    files = dom.xpath("//table[@class='inventory']//tr[@class='file']")
    assert [r.xpath("string(./td[3])") for r in files] == [e["status"] for e in report["inventory"]]
    # The verdict line first, then the header with the case's own name,
    # source and tool version.
    first = dom.xpath("//div[@class='exa']/*[1]")[0]
    assert first.get("class").startswith("verdict ") and \
        first.text_content() == report["verdict"]["summary"]
    assert report["case"]["name"] in dom.xpath("string(//title)")
    assert report["tool"]["version"] in dom.xpath("string(//header)")
    # Nothing on the page points outside it.
    urls = dom.xpath("//@href | //@src | //@action | //@srcset | //@data")
    assert all(u.startswith("#") for u in urls), urls


@needs_browser
def test_request_detector_sees_an_external_request(browser, tmp_path: Path) -> None:
    """The detector is not blind: a page that loads an external image
    (without our CSP) shows the request."""
    page = tmp_path / "leaky.html"
    page.write_text("<!doctype html><img src='http://192.0.2.1/x.png'>", encoding="utf-8")
    _, requests = browser.load(page)
    assert fetched(requests) == ["http://192.0.2.1/x.png"]


@needs_browser
def test_csp_blocks_injected_resources(browser, tmp_path: Path) -> None:
    """Case strings holding markup stay text; and even a resource slipped
    into the page would be refused by its Content-Security-Policy."""
    report = analyze(SAMPLES / "smtp-mailbox-stuck-evtx" / "case").to_dict()
    evil = "<img src='http://192.0.2.7/a.png'><script>document.title='pwned'</script>"
    report["case"]["name"] = evil
    report["inventory"][0]["path"] = f"logs/{evil}.evtx"
    report["findings"][0]["summary"] = evil
    page = _page(report, tmp_path, "evil")
    dom_text, requests = browser.load(page)
    dom = lxml_html.fromstring(dom_text)
    assert dom.xpath("//img | //script") == []
    assert evil in dom.xpath("string(//table[@class='inventory'])")
    assert dom.xpath("string(//title)") == f"exchange-analyzer: {evil} — 1 problem(s)"  # not run
    assert fetched(requests) == []
    # The policy itself: a raw injected <img> and <script> are refused.
    leaky = tmp_path / "leaky.html"
    leaky.write_text(page.read_text(encoding="utf-8").replace(
        "<body>", "<body><img src='http://192.0.2.8/b.png'><script>document.title='ran'</script>"),
        encoding="utf-8")
    dom_text, requests = browser.load(leaky)
    assert fetched(requests) == []
    assert [(r["request"]["url"], r["blocked"]) for r in requests if r["blocked"]] == \
        [("http://192.0.2.8/b.png", "csp")]
    assert "ran" != lxml_html.fromstring(dom_text).xpath("string(//title)")


@needs_browser
def test_print_unfolds_ruled_out_causes(browser, tmp_path: Path) -> None:
    """Printed, the page shows what the screen folds (ruled-out causes, the
    timeline's record list), and it prints to PDF."""
    report = analyze(SAMPLES / "rpc-port-conflict-static-port-in-use" / "case").to_dict()
    browser.load(_page(report, tmp_path, "print"))
    visible = "Array.from(document.querySelectorAll('details li, details tr')).map(e => e.checkVisibility())"

    def shown() -> list[bool]:
        return browser.call("Runtime.evaluate", session=True, returnByValue=True,
                            expression=visible)["result"]["value"]

    assert shown() and not any(shown())
    browser.call("Emulation.setEmulatedMedia", session=True, media="print")
    try:
        assert all(shown())
        pdf = browser.call("Page.printToPDF", session=True)["data"]
        assert base64.b64decode(pdf)[:5] == b"%PDF-"
    finally:
        browser.call("Emulation.setEmulatedMedia", session=True, media="")


@needs_browser
@pytest.mark.parametrize("name", ["rpc-port-conflict-static-port-in-use", "smtp-mailbox-healthy-delivery"])
def test_screenshot(browser, name: str, tmp_path: Path) -> None:
    """A screenshot of a problem and a healthy sample's page, for a look
    (``EXA_SCREENSHOT_DIR`` keeps them; else under pytest's tmp dir)."""
    out = Path(os.environ.get("EXA_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    report = analyze(SAMPLES / name / "case").to_dict()
    browser.load(_page(report, tmp_path, name))
    shot = out / f"{name}.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


# --------------------------------------------------------------------------
# Without a browser: escaping and the statistics hook

def test_every_case_string_is_escaped() -> None:
    """Markup in any string of the report (file names, excerpts, hosts,
    the case name, statistics labels) is text on the page."""
    report = analyze(SAMPLES / "smtp-mailbox-stuck-evtx" / "case").to_dict()
    evil = "<b onmouseover=x>&amp;\"'</b>"

    def poison(obj, key=None):
        if isinstance(obj, str):
            return obj if key in ("status", "verdict", "severity", "ts", "analyzed_at") else obj + evil
        if isinstance(obj, dict):
            return {k: poison(v, k) for k, v in obj.items()}
        if isinstance(obj, list):
            return [poison(v, key) for v in obj]
        return obj

    bad = poison(report)
    bad["statistics"] = {f"top senders {evil}": {f"a{evil}@x": 3, "b": 1}, "note": [evil]}
    page = render(bad, "html")
    assert "<b onmouseover" not in page and "&lt;b onmouseover=x&gt;&amp;amp;&quot;&#x27;&lt;/b&gt;" in page
    dom = lxml_html.fromstring(page)
    assert dom.xpath("//b[@onmouseover]") == []
    assert evil in dom.xpath("string(//table[@class='inventory'])")


def test_statistics_block_is_drawn_when_present() -> None:
    report = analyze(SAMPLES / "smtp-mailbox-stuck-evtx" / "case").to_dict()
    report.pop("statistics", None)
    assert "id='statistics'" not in render(report, "html")
    report["statistics"] = {"messages per hour": {"22:00": 12, "23:00": 30, "00:00": 0},
                            "events": {"RECEIVE": 5, "DELIVER": 2}}
    dom = lxml_html.fromstring(render(report, "html"))
    charts = dom.xpath("//section[@id='statistics']//svg[@class='chart']")
    assert len(charts) == 2
    widths = [float(r.get("width")) for r in charts[0].xpath(".//rect[@class='bar']")]
    assert len(widths) == 3 and widths[1] == max(widths) and widths[2] == 0


def test_message_tracking_statistics_are_charted() -> None:
    """The statistics block as analyzer.stats.summary builds it: per-server
    records and top senders become charts and tables."""
    from analyzer import load_case
    from analyzer.stats import summary

    case_path = SAMPLES / "smtp-mailbox-stuck-nested-zip" / "case"
    report = analyze(case_path).to_dict()
    report["statistics"] = summary(load_case(case_path).table)
    dom = lxml_html.fromstring(render(report, "html"))
    section = dom.xpath("//section[@id='statistics']")[0]
    assert len(section.xpath(".//svg[@class='chart']")) == 4  # server, day, senders, recipients
    senders = report["statistics"]["top_senders"]
    rows = section.xpath(".//table[@class='stats']")[2].xpath(".//tbody/tr")
    assert [r.xpath("string(./td[1])") for r in rows] == [s["sender"] for s in senders]
    bars = section.xpath(".//svg[@class='chart']")[2].xpath(".//rect[@class='bar']")
    widths = [float(b.get("width")) for b in bars]
    assert widths == sorted(widths, reverse=True) and len(widths) == len(senders)
    assert report["statistics"]["first"] in section.xpath("string(.//dl)")


def test_control_and_bidi_characters_are_shown_not_obeyed() -> None:
    """A file name with a right-to-left override or an escape character
    is shown escaped, not allowed to reorder or garble the page."""
    report = analyze(SAMPLES / "smtp-mailbox-stuck-evtx" / "case").to_dict()
    report["inventory"][0]["path"] = "logs/evil\u202eexe.txt\x1b[31m"
    page = render(report, "html")
    assert "\u202e" not in page and "\x1b" not in page
    cell = lxml_html.fromstring(page).xpath("string(//table[@class='inventory']//tr[1]/td[1])")
    assert cell.startswith("logs/evil") and "exe.txt" in cell
