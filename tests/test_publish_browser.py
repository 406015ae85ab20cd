"""The published site in a real headless Chromium, as a reader sees it.

Chromium (Debian's `chromium` package) is driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: no port, no websocket library). Every page is loaded from file:// at
390 px and 1280 px wide, with a proxy on a closed port and no DNS, and must: paint something (a
screenshot that is not blank), fit the width, show every commitment with its status, run the
Persian quote right to left, log no console error, make no request outside the folder, and link
only to files that exist. The tests skip, with one line saying why, where chromium is missing.

`python tests/test_publish_browser.py OUT.png` writes the README's screenshot (the built-in
register, TRACKER_TODAY as set).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    from .conftest import Result
    from .test_publish import broken_links, make_world
except ImportError:  # tests/ collected as top-level modules (no __init__.py)
    from conftest import Result  # type: ignore[no-redef]
    from test_publish import broken_links, make_world  # type: ignore[no-redef]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
WIDTHS = (390, 1280)
TIMEOUT = 30.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """Headless Chromium over the DevTools protocol on fds 3 and 4 (messages end with NUL)."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            import fcntl

            # Moved out of the way first: either end may itself be fd 3 or 4.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
            os.dup2(high[0], 3)  # inheritable, unlike the pipe's own ends
            os.dup2(high[1], 4)

        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--mute-audio",
                f"--user-data-dir={profile}",
                f"--proxy-server=http://127.0.0.1:{_closed_port()}",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            preexec_fn=wire,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next = 0
        self.size = (0, 0)
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            got = self._read(deadline)
            if got.get("id") == self._next:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return dict(got.get("result", {}))
            self.events.append(got)

    def wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            got = self._read(deadline)
            if got.get("method") == method:
                return got
            self.events.append(got)

    def open(self, url: str, width: int, height: int = 900) -> None:
        self.size = (width, height)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def eval(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, scale: float = 1.0) -> bytes:
        """The viewport as PNG (`scale` < 1: smaller, for a quick look at its pixels)."""
        width, height = self.size
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": scale}
        data = self.call("Page.captureScreenshot", session=True, format="png", clip=clip)["data"]
        return base64.b64decode(data)

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, and requests for anything outside file:// and data:."""
        found = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                found.append(f"console {p['type']}: {p.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {p.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                found.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if not url.startswith(("file://", "data:")):
                    found.append(f"network request: {url}")
            elif method == "Network.loadingFailed":
                found.append(f"failed to load: {p.get('errorText')}")
        return found

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def png_ink(data: bytes) -> tuple[int, int, float, int]:
    """Width, height, the share of pixels that differ from the top-left one, and how many
    distinct colours there are (8-bit RGB or RGBA PNGs, as Chromium writes them)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        previous = line
    pixels = [row[x : x + 3] for row in rows[::4] for x in range(0, stride, channels * 4)]
    background = rows[0][:3]
    ink = sum(1 for p in pixels if p != background) / len(pixels)
    return width, height, ink, len(set(pixels))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A published site of a SQLite database with hostile text and pending evidence (built once
    for the module: the browser only reads it)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from tracker.cli import main

    tmp = tmp_path_factory.mktemp("published")

    def invoke(*args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return Result(code, out.getvalue(), err.getvalue())

    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("TRACKER_", "OPENSKY_")):
                mp.delenv(key)
        mp.setenv("TRACKER_USER", "tester")
        mp.setenv("TRACKER_DB", str(tmp / "commitments.db"))
        ids = make_world(invoke)
        out = tmp / "site"
        r = invoke("publish", "--out", str(out), "--include-pending")
        assert r.code == 0, r.err
    data = json.loads((out / "data.json").read_text("utf-8"))
    yield {"dir": out, "ids": ids, "status": {c["slug"]: c["status"] for c in data["commitments"]}}


def _files_linked(b: Browser, page: Path) -> list[str]:
    """Links on the open page that point into the folder and do not reach a file."""
    hrefs = b.eval(
        "[...document.querySelectorAll('a[href],link[href]')]"
        ".map(a => new URL(a.getAttribute('href'), document.baseURI).href)"
    )
    bad = []
    for href in hrefs:
        if href.startswith(("http://", "https://", "data:")):
            continue
        if not href.startswith("file://"):
            bad.append(href)
            continue
        from urllib.parse import unquote, urlsplit

        if not Path(unquote(urlsplit(href).path)).is_file():
            bad.append(f"{page.name}: {href}")
    return bad


@pytest.mark.parametrize("width", WIDTHS)
def test_index_as_a_reader_sees_it(browser: Browser, site: dict[str, Any], width: int) -> None:
    index = site["dir"] / "index.html"
    browser.open(index.as_uri(), width)
    _, _, ink, colours = png_ink(browser.screenshot(0.25))
    assert ink > 0.03 and colours > 8, (ink, colours)  # not blank
    assert browser.eval("document.documentElement.scrollWidth") <= width  # nothing sticks out
    shown = browser.eval(
        "Object.fromEntries([...document.querySelectorAll('li.card')].map(c => ["
        " c.dataset.slug, c.querySelector('.badge').innerText.trim()]))"
    )
    assert shown == {slug: st.replace("_", " ") for slug, st in site["status"].items()}
    assert browser.eval("document.scripts.length") == 0
    assert browser.eval("getComputedStyle(document.querySelector('li.card')).display") != "none"
    assert _files_linked(browser, index) == []
    assert browser.problems() == []


@pytest.mark.parametrize("width", WIDTHS)
def test_every_commitment_page_as_a_reader_sees_it(
    browser: Browser, site: dict[str, Any], width: int
) -> None:
    for slug, status in site["status"].items():
        page = site["dir"] / "commitments" / f"{slug}.html"
        browser.open(page.as_uri(), width)
        _, _, ink, colours = png_ink(browser.screenshot(0.25))
        assert ink > 0.03 and colours > 8, (slug, ink, colours)
        assert browser.eval("document.documentElement.scrollWidth") <= width, slug
        assert browser.eval("document.querySelector('article').dataset.status") == status
        quote = "getComputedStyle(document.querySelector('blockquote[lang=fa]'))"
        assert browser.eval(f"{quote}.direction") == "rtl", slug
        assert browser.eval(f"{quote}.textAlign") in ("start", "right"), slug
        assert browser.eval("document.querySelector('svg[role=img]').getBBox().width") > 100
        assert browser.eval("document.scripts.length") == 0
        assert _files_linked(browser, page) == []
        assert browser.problems() == [], slug


def test_hostile_title_is_text_on_screen(browser: Browser, site: dict[str, Any]) -> None:
    page = site["dir"] / "commitments" / "tabriz-baku-flight.html"
    browser.open(page.as_uri(), 1280)
    item = f"document.getElementById('e{site['ids']['hostile']}')"
    title = browser.eval(f"{item}.querySelector('.ev-title').innerText")
    assert title.startswith(
        "<script>alert(1)</script> [link](javascript:alert(2)) | pipe \\u202eevil"
    )
    assert browser.eval(f"{item}.querySelectorAll('img, script, b, strong').length") == 0
    assert browser.eval(f"{item}.querySelector('.ev-title a').href").startswith(
        "https://example.org/"
    )
    pending = f"document.getElementById('e{site['ids']['pending']}')"
    assert "waiting for review" in browser.eval(f"{pending}.innerText")
    assert browser.eval(f"{pending}.querySelectorAll('a').length") == 0  # javascript: is no link
    assert browser.problems() == []


def test_weekly_reports_and_print(browser: Browser, site: dict[str, Any]) -> None:
    weeks = site["dir"] / "weeks" / "index.html"
    browser.open(weeks.as_uri(), 390)
    assert browser.eval("document.documentElement.scrollWidth") <= 390
    first = browser.eval("document.querySelector('ol.weeks a').href")
    browser.open(first, 390)
    assert browser.eval("document.querySelector('article.report h1').innerText").startswith(
        "Weekly report "
    )
    assert browser.eval("document.documentElement.scrollWidth") <= 390
    assert _files_linked(browser, weeks) == []
    assert browser.problems() == []
    browser.open((site["dir"] / "index.html").as_uri(), 1280)
    pdf = base64.b64decode(browser.call("Page.printToPDF", session=True)["data"])
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 1
    assert broken_links(site["dir"]) == []


def main(out: Path) -> None:
    """Publish the built-in register and save a 1280 px screenshot of its index."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TRACKER_DB": str(Path(tmp) / "c.db")}
        subprocess.run(
            [sys.executable, "-m", "tracker", "publish", "--out", f"{tmp}/site", "--quiet"],
            env=env,
            check=True,
        )
        b = Browser(Path(tmp) / "profile")
        try:
            b.open((Path(tmp) / "site" / "index.html").as_uri(), 1280, 1000)
            out.write_bytes(b.screenshot())
            assert b.problems() == [], b.problems()
        finally:
            b.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
