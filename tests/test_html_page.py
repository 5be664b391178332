"""The HTML case page, rendered by a real browser (headless Chromium).

Every sample's page is loaded by Chromium; the DOM it builds is checked
against the JSON report (status cells, evidence rows, timeline points), a
NetLog proves the page requested nothing over the network, and screenshots
of a problem and a healthy sample are written for a look (their paths are
printed; ``EXA_SCREENSHOT_DIR`` keeps them somewhere stable). Skipped when
no Chromium is installed (CI installs it: .ci/run).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import html as lxml_html

from analyzer.render import render
from analyzer.report import analyze
from analyzer.scenarios import all_scenarios

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
NAMES = sorted(s.name for s in all_scenarios())
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (CI installs it)")

#: Quiet flags: the browser's own background traffic (updates, sync) is off,
#: and what remains is told apart from the page's by its isolation key.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--no-pings", "--hide-scrollbars"]


def chromium(page: Path, work: Path, *extra: str) -> str:
    """Load ``page`` in headless Chromium with a NetLog; return stdout."""
    cmd = [BROWSER, *FLAGS, f"--user-data-dir={work / 'profile'}",
           f"--log-net-log={work / 'netlog.json'}", *extra, page.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def page_requests(netlog: Path) -> list[str]:
    """URLs the page (not the browser itself) asked for over the network:
    URL requests whose network isolation key is the file:// page."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and "file://" in e["params"].get("network_isolation_key", "")
            and not e["params"]["url"].startswith("file:")]


def _render(name: str, work: Path) -> tuple[dict, lxml_html.HtmlElement, list[str]]:
    report = analyze(SAMPLES / name / "case").to_dict()
    work.mkdir(parents=True)
    page = work / f"{name}.html"
    page.write_text(render(report, "html"), encoding="utf-8")
    dom = chromium(page, work, "--dump-dom")
    return report, lxml_html.fromstring(dom), page_requests(work / "netlog.json")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """Every sample's page as Chromium built it (two browsers at a time)."""
    if BROWSER is None:
        pytest.skip("no Chromium installed (CI installs it)")
    root = tmp_path_factory.mktemp("pages")
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda n: _render(n, root / n), NAMES)
        return dict(zip(NAMES, done))


def _unique(evidence: list[dict]) -> int:
    return len({(e["path"], e["locator"]) for e in evidence})


@needs_browser
@pytest.mark.parametrize("name", NAMES)
def test_page_dom_matches_report(rendered, name: str) -> None:
    report, dom, requests = rendered[name]
    assert requests == []
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
    # Header: the case's own name, source and tool version.
    assert report["case"]["name"] in dom.xpath("string(//title)")
    assert report["tool"]["version"] in dom.xpath("string(//header)")
    # Nothing on the page points outside it.
    urls = dom.xpath("//@href | //@src | //@action | //@srcset | //@data")
    assert all(u.startswith("#") for u in urls), urls


@needs_browser
def test_netlog_sees_an_external_request(tmp_path: Path) -> None:
    """The request detector is not blind: a page that loads an external
    image (without our CSP) shows up in the NetLog."""
    page = tmp_path / "leaky.html"
    page.write_text("<!doctype html><img src='http://192.0.2.1/x.png'>", encoding="utf-8")
    chromium(page, tmp_path, "--dump-dom")
    assert page_requests(tmp_path / "netlog.json") == ["http://192.0.2.1/x.png"]


@needs_browser
def test_csp_blocks_injected_resources(tmp_path: Path) -> None:
    """Case strings holding markup stay text; and even a resource slipped
    into the page would be refused by its Content-Security-Policy."""
    report = analyze(SAMPLES / "smtp-mailbox-stuck-evtx" / "case").to_dict()
    evil = "<img src='http://192.0.2.7/a.png'><script>document.title='pwned'</script>"
    report["case"]["name"] = evil
    report["inventory"][0]["path"] = f"logs/{evil}.evtx"
    report["findings"][0]["summary"] = evil
    page = tmp_path / "evil.html"
    text = render(report, "html")
    page.write_text(text, encoding="utf-8")
    dom = lxml_html.fromstring(chromium(page, tmp_path, "--dump-dom"))
    assert dom.xpath("//img | //script") == []
    assert evil in dom.xpath("string(//table[@class='inventory'])")
    assert dom.xpath("string(//title)") == f"exchange-analyzer: {evil} — 1 problem(s)"  # not run
    assert page_requests(tmp_path / "netlog.json") == []
    # The policy itself: a raw injected <img> is refused without a request.
    leaky = tmp_path / "leaky.html"
    leaky.write_text(text.replace("<body>", "<body><img src='http://192.0.2.8/b.png'>"), encoding="utf-8")
    chromium(leaky, tmp_path / "2", "--dump-dom")
    assert page_requests(tmp_path / "2" / "netlog.json") == []


@needs_browser
@pytest.mark.parametrize("name", ["rpc-port-conflict-static-port-in-use", "smtp-mailbox-healthy-delivery"])
def test_screenshot(name: str, tmp_path: Path) -> None:
    """A screenshot of a problem and a healthy sample's page, for a look."""
    out = Path(os.environ.get("EXA_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page = tmp_path / f"{name}.html"
    page.write_text(render(analyze(SAMPLES / name / "case").to_dict(), "html"), encoding="utf-8")
    shot = out / f"{name}.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000")
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
    assert "id='statistics'" not in render(report, "html")
    report["statistics"] = {"messages per hour": {"22:00": 12, "23:00": 30, "00:00": 0},
                            "events": {"RECEIVE": 5, "DELIVER": 2}}
    dom = lxml_html.fromstring(render(report, "html"))
    charts = dom.xpath("//section[@id='statistics']//svg[@class='chart']")
    assert len(charts) == 2
    widths = [float(r.get("width")) for r in charts[0].xpath(".//rect[@class='bar']")]
    assert len(widths) == 3 and widths[1] == max(widths) and widths[2] == 0
