"""The launch's secret never reaches another server on 127.0.0.1, and another page cannot drive the app.

Headless Chromium logs in as the window does (the URL ``zishu serve`` prints), then visits a second
loopback server that records every header it receives, and from that server's page points an
``<img>`` and a no-cors ``fetch`` at a companion session's event stream (which closes the session
when it ends)."""

from __future__ import annotations

import os
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest

from conftest import AppProcess, LoopbackServer, watched_page

pytestmark = pytest.mark.browser

ATTACK = """<!doctype html><title>elsewhere</title><script>
const targets = %s;
window.results = [];
for (const url of targets) {
  const img = new Image();
  img.onload = () => window.results.push(['img', url, 'loaded']);
  img.onerror = () => window.results.push(['img', url, 'refused']);
  img.src = url;
  fetch(url, {mode: 'no-cors', credentials: 'include'}).then(
    () => window.results.push(['fetch', url, 'answered']), () => window.results.push(['fetch', url, 'failed']));
}
</script>"""


class HeaderLog(LoopbackServer):
    """A loopback server that records (path, headers) of every request and answers a small page."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.attack = ""
        log = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                log.seen.append((self.path, dict(self.headers.items())))
                body = (log.attack if self.path == "/attack" else "<!doctype html><img src='/pixel.png'>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


@pytest.fixture
def app(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def test_another_loopback_server_never_receives_the_secret_nor_drives_the_app(browser, app):
    sid = app.api("POST", "/api/companion/sessions", json={"character": "acme/mei"}, timeout=180).json()["id"]
    with HeaderLog() as other, watched_page(browser, app.login_url) as page:
        own = urlsplit(page.url)
        assert re.fullmatch(r"zishu-[0-9a-f]{16}\.localhost", own.hostname), page.url  # the login hopped there
        assert "token" not in page.url and page.title()
        assert any(c["name"] == "zishu_token" and c["domain"] == own.hostname for c in page.context.cookies())

        port = urlsplit(other.url).port
        for url in (other.url + "/", other.url + "/pixel.png", other.url + "/favicon.ico",
                    f"http://localhost:{port}/"):
            page.goto(url)

        events = f"/api/companion/sessions/{sid}/events"
        targets = [f"{own.scheme}://{own.netloc}{events}", app.url + events]
        other.attack = ATTACK % repr(targets).replace("'", '"')
        page.goto(other.url + "/attack")
        page.wait_for_function("window.results.length === 4", timeout=30_000)
        results = page.evaluate("window.results")
        assert sorted(r[2] for r in results if r[0] == "img") == ["refused", "refused"], results
        page.goto("about:blank")
        # the session is still open: neither the <img> nor the fetch ever opened (and so ended) its stream
        assert app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "hi"}).status_code == 200
        page.goto(f"{own.scheme}://{own.netloc}/discover")  # and the window's own pages still work
        assert page.title() and "403" not in (page.text_content("body") or "")

    assert {path for path, _ in other.seen} >= {"/", "/pixel.png", "/favicon.ico", "/attack"}
    for path, headers in other.seen:
        assert "zishu_token" not in headers.get("Cookie", ""), (path, headers)
        assert not any(app.secret in value for value in headers.values()), (path, headers)
