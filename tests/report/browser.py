"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages separated by NUL bytes on file descriptors 3 and 4), so the tests need no
websocket client, no playwright and no network.

``Browser.open(path, width)`` loads a local file at a viewport width and returns the console
errors and uncaught exceptions it raised; ``evaluate`` runs a script in the page and returns
its JSON value; ``screenshot`` saves a full-page PNG.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def install_chromium() -> str:
    """Debian's chromium, installed with apt-get when missing; '' when it cannot be."""
    found = find_chromium()
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return ""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=True)
        except (OSError, subprocess.SubprocessError):
            return ""
    return find_chromium() or ""


class Browser:
    """One Chromium process and one page target, closed by :meth:`close`."""

    def __init__(self, executable: str, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="causal-mi-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds() -> None:  # the child reads commands on fd 3 and answers on fd 4
            r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # above 4 first: no clobbering
            w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=fds,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def _wait(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        if any(e.get("method") == method for e in self.events):
            return
        while time.monotonic() < deadline:
            ev = self._read()
            self.events.append(ev)
            if ev.get("method") == method:
                return
        raise TimeoutError(method)

    def open(self, path: Path, *, width: int, height: int = 900) -> list[str]:
        """Load ``path`` at a viewport ``width``; the console errors and exceptions it raised."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 700,
        )
        self.events.clear()
        self.send("Page.navigate", session=True, url=Path(path).resolve().as_uri())
        self._wait("Page.loadEventFired")
        self.evaluate("1")  # let pending console messages arrive
        return self.errors()

    def errors(self) -> list[str]:
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('exception', {}).get('description', d['text'])}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value")) for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log: {p['entry']['text']}")
        return out

    def evaluate(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        data = self.send(
            "Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True
        )["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


#: in the page: every figure's size, and pairs of overlapping text boxes in each graph
CHECK_LAYOUT = r"""
(() => {
  const figures = [...document.querySelectorAll('svg.figure')].map(s => {
    const r = s.getBoundingClientRect();
    return {id: s.id || s.getAttribute('aria-label'), width: r.width, height: r.height};
  });
  const overlaps = [];
  for (const g of document.querySelectorAll('svg.graph')) {
    const boxes = [...g.querySelectorAll('text')]
      .map(t => [t.textContent, t.getBoundingClientRect()]);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [ta, a] = boxes[i], [tb, b] = boxes[j];
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 0.5 && h > 0.5) overlaps.push([g.id, ta, tb]);
    }
  }
  return {figures, overlaps, scrollWidth: document.documentElement.scrollWidth,
          innerWidth: window.innerWidth};
})()
"""


def problems(layout: dict[str, Any], errors: list[str]) -> list[str]:
    """What is wrong with a loaded page: console errors, figures without area, overlapping
    text in a graph, a page wider than the viewport (a figure or table not contained)."""
    out = list(errors)
    for f in layout["figures"]:
        if f["width"] < 1 or f["height"] < 1:
            out.append(f"figure {f['id']} has no area ({f['width']} x {f['height']})")
    for g, a, b in layout["overlaps"]:
        out.append(f"in {g}: text '{a}' overlaps '{b}'")
    if layout["scrollWidth"] > layout["innerWidth"] + 1:
        out.append(
            f"the page is {layout['scrollWidth']} px wide in a {layout['innerWidth']} px viewport"
        )
    return out
