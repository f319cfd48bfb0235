"""The local server refuses what is not its own window or an API client holding the secret."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

import pytest
import requests

from conftest import AppProcess


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "ZISHU_HOME": str(home)}
    env.pop("ZISHU_CATALOG", None)
    with AppProcess(env) as running:
        yield running


def test_no_secret_gets_403(app):
    r = requests.get(app.url + "/api/health", timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN_SECRET"
    assert "no secret" in r.json()["error"]["message"]
    assert requests.get(app.url + "/discover", timeout=10).status_code == 403


def test_a_wrong_secret_gets_403(app):
    for kwargs in ({"headers": {"X-Zishu-Token": "guess"}}, {"cookies": {"zishu_token": "guess"}},
                   {"params": {"token": "guess"}}, {"headers": {"Authorization": "Bearer guess"}}):
        r = requests.get(app.url + "/api/health", timeout=10, **kwargs)
        assert r.status_code == 403 and "wrong secret" in r.json()["error"]["message"], kwargs


def test_a_foreign_host_header_gets_403_even_with_the_secret(app):
    r = app.api("GET", "/api/health", headers={"Host": "attacker.example:80"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN_HOST"
    assert app.api("GET", "/api/health", headers={"Host": "localhost"}).status_code == 200


def test_a_post_from_a_foreign_origin_gets_403(app):
    cookies = {"zishu_token": app.secret}
    r = requests.post(app.url + "/api/catalog/update", cookies=cookies, timeout=10,
                      headers={"Origin": "http://attacker.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN_ORIGIN"
    # the cookie alone, without any Origin, is not enough to change anything either
    r = requests.post(app.url + "/api/catalog/update", cookies=cookies, timeout=10)
    assert r.status_code == 403
    r = requests.post(app.url + "/api/catalog/update", cookies=cookies, timeout=10, headers={"Origin": app.url})
    assert r.status_code == 200


def _own_host(app) -> str:
    """The launch's own ``zishu-<random>.localhost:PORT``, where the login on 127.0.0.1 hops to."""
    hop = requests.get(app.login_url, timeout=10, allow_redirects=False)
    assert hop.status_code == 303 and "Set-Cookie" not in hop.headers  # no cookie ever on 127.0.0.1
    where = urlsplit(hop.headers["Location"])
    assert re.fullmatch(r"zishu-[0-9a-f]{16}\.localhost", where.hostname) and where.port == urlsplit(app.url).port
    assert where.query == urlsplit(app.login_url).query  # the same login, on the launch's own name
    return where.netloc


def test_the_login_url_sets_an_httponly_cookie_and_drops_the_secret_from_the_url(app):
    session = requests.Session()
    # a browser resolves *.localhost itself; requests does not, so it names the host in the header
    own = {"Host": _own_host(app)}
    r = session.get(app.login_url, timeout=10, allow_redirects=False, headers=own)
    assert r.status_code == 303 and "token" not in r.headers["Location"]
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "domain=" not in cookie.lower()  # host-only: sent to the launch's own name, nowhere else
    assert session.get(app.url + "/api/health", timeout=10, headers=own).json()["ok"] is True


def test_only_the_launchs_own_localhost_name_is_accepted(app):
    own = _own_host(app)
    assert app.api("GET", "/api/health", headers={"Host": own}).status_code == 200
    port = urlsplit(app.url).port
    r = app.api("GET", "/api/health", headers={"Host": f"zishu-0123456789abcdef.localhost:{port}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN_HOST"


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_request_another_page_made_is_refused_whatever_it_carries(app, site):
    """Sec-Fetch-Site is set by the browser, never by a page: another port of 127.0.0.1 is same-site."""
    for path in ("/api/health", "/discover", "/api/companion/sessions/1/events"):
        r = app.api("GET", path, headers={"Sec-Fetch-Site": site}, cookies={"zishu_token": app.secret})
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN_ORIGIN", path
    for site_ok in ("same-origin", "none"):
        assert app.api("GET", "/api/health", headers={"Sec-Fetch-Site": site_ok}).status_code == 200


def test_the_app_also_holds_its_port_on_ipv6_loopback(app):
    """Browsers may try [::1] first for *.localhost: no other program may answer there."""
    probe = socket.socket(socket.AF_INET6)
    try:
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    finally:
        probe.close()
    port = urlsplit(app.url).port
    r = requests.get(f"http://[::1]:{port}/api/health", headers={"X-Zishu-Token": app.secret}, timeout=10)
    assert r.status_code == 200 and r.json()["ok"] is True


def test_big_bodies_are_refused(app):
    r = app.api("PUT", "/api/settings", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"


@pytest.mark.parametrize("path", [
    "/api/library/..%2F..%2Fetc/passwd/open",
    "/api/library/zishu/..%2F..%2F..%2Fetc/open",
    "/api/library/Zishu/hero/open?version=../../x",
    "/api/catalog/resources/zishu/not%20an%20id",
])
def test_paths_from_requests_are_checked_before_they_reach_the_disk(app, path):
    method = "POST" if path.split("?")[0].endswith("/open") else "GET"
    r = app.api(method, path)
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"]["code"] in ("USAGE", "NOT_FOUND", "MODEL_NOT_AVAILABLE")


def test_bad_input_gets_a_clear_error(app):
    r = app.api("POST", "/api/installs", data="not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
    r = app.api("POST", "/api/installs", json={"request": "no such thing"})
    assert r.status_code == 400 and "not a resource id" in r.json()["error"]["message"]
    r = app.api("PUT", "/api/settings", json={"catalog_url": "ftp://x", "colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["error"]["message"]
    r = app.api("PUT", "/api/settings", json={"catalog_url": "ftp://x"})
    assert r.status_code == 400 and "http(s)://" in r.json()["error"]["message"]
    assert app.api("GET", "/api/jobs/12345").status_code == 404
    assert app.api("GET", "/api/jobs/abc").status_code == 400


def test_pages_carry_a_strict_content_security_policy(app):
    r = app.api("GET", "/api/health")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
