"""A headless Chromium driven over the DevTools protocol (a pipe, no
network port), for the HTML page tests: one browser loads every page, and
the Network domain reports every request a page makes.

Chromium's ``--remote-debugging-pipe`` reads JSON commands, each ended by
a NUL byte, from file descriptor 3 and writes replies and events the same
way to descriptor 4.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
#: Quiet flags: the browser's own background traffic (updates, sync) is off.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--no-pings", "--hide-scrollbars", "--mute-audio"]
TIMEOUT_S = 60.0


class Browser:
    """One Chromium, one tab; :meth:`load` returns the DOM a page built and
    the URLs it requested."""

    def __init__(self, profile: Path) -> None:
        assert BROWSER, "no Chromium installed"
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        # The child's ends moved to descriptors >= 10, clear of 3 and 4.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_r, from_browser_w)]
        os.close(to_browser_r)
        os.close(from_browser_w)
        to_browser_r, from_browser_w = high
        # bash gives the browser our pipe ends as its descriptors 3 and 4
        # (dash takes no two-digit descriptors; preexec_fn is unsafe while
        # other threads run).
        redirect = (f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w} '
                    f'{to_browser_r}<&- {from_browser_w}>&-')
        self.proc = subprocess.Popen(
            ["bash", "-c", redirect, "bash", BROWSER, *FLAGS, "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--window-size=1200,2000", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=True)

    def _send(self, msg: dict[str, Any]) -> None:
        os.write(self._w, json.dumps(msg).encode() + b"\0")

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one command; keep the events that arrive meanwhile."""
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self._send(msg)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._receive(deadline))

    def load(self, page: Path) -> tuple[str, list[dict[str, Any]]]:
        """Navigate to ``page``; return its DOM (outerHTML after load) and
        the requests it made (``Network.requestWillBeSent`` params, the
        document's own included; ``blocked`` names the reason the browser
        refused one, e.g. ``csp``)."""
        self.events.clear()
        self.call("Page.navigate", session=True, url=page.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        dom = self.call("Runtime.evaluate", session=True, returnByValue=True,
                        expression="document.documentElement.outerHTML")["result"]["value"]
        blocked = {e["params"]["requestId"]: e["params"]["blockedReason"] for e in self.events
                   if e.get("method") == "Network.loadingFailed" and e["params"].get("blockedReason")}
        requests = [dict(e["params"], blocked=blocked.get(e["params"]["requestId"]))
                    for e in self.events if e.get("method") == "Network.requestWillBeSent"]
        return dom, requests

    def screenshot(self, target: Path) -> None:
        """A full-page PNG of the page loaded last."""
        data = self.call("Page.captureScreenshot", session=True, format="png",
                         captureBeyondViewport=True)["data"]
        target.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._r)
        os.close(self._w)
