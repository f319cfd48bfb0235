"""Every bad input gets a 4xx with an error code, never a 500 or an exception's text.

The findings of an attack run, one test each (job ids of any length or with "²", ``limit=²``, a
huge priority, JSON nested 100k deep, a lone surrogate, NaN, ``since=nan``, bodies past the limit,
chunked or not), then a property-based test (hypothesis, derandomized and small so it runs in
seconds) that drives every route of the app's URL map with hostile path parameters, query
parameters and JSON bodies and asserts that nothing answers 5xx and every API error is JSON
with a code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zishu.catalog import SNAPSHOT

SECRET = "s3cret"
LIMIT = 1024 * 1024  # the app's body limit (web/security.py)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Iterator:
    """ZISHU_HOME and the bundled catalog (no network), for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("fuzz") / "home"
        mp.setenv("ZISHU_HOME", str(path))
        mp.setenv("ZISHU_CATALOG", str(SNAPSHOT))
        mp.delenv("ZISHU_QUEUE", raising=False)
        yield path


@pytest.fixture(scope="module")
def app(home):
    """The app in this process (no job consumer: submitted jobs only wait)."""
    from zishu.runtime import Runtime
    from zishu.web.app import create_app

    runtime = Runtime(home)
    yield create_app(runtime, SECRET)
    runtime.models.unload()
    runtime.close()


@pytest.fixture(scope="module")
def client(app):
    client = app.test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN=SECRET, HTTP_ORIGIN="http://localhost")
    return client


def refused(response, status: int = 400, code: str = "USAGE") -> str:
    """The error message of a JSON error answer with ``status`` and ``code``."""
    streaming = response.mimetype == "text/event-stream"  # never read: it would not end
    assert response.status_code == status, response.status if streaming else response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["code"] == code, error
    return error["message"]


# -- the findings, one by one -------------------------------------------------------------------


@pytest.mark.parametrize("job", ["1" * 25, "1" * 5000, "²", "١٢", "９", "9223372036854775808", "-1"])
@pytest.mark.parametrize("action", ["", "/cancel", "/retry"])
def test_job_ids_of_any_length_or_with_other_digits_are_a_400(client, job, action):
    send = client.get if not action else client.post
    message = refused(send(f"/api/jobs/{job}{action}"))
    assert "not a job id" in message and len(message) < 200  # a 5,000-digit id is not echoed whole
    assert client.get("/api/jobs/9223372036854775807").status_code == 404  # the largest id: simply absent


@pytest.mark.parametrize("limit", ["²", "-1", "1e3", "1" * 5000, "10001"])
def test_a_search_limit_that_is_not_a_small_whole_number_is_a_400(client, limit):
    assert "limit=" in refused(client.get(f"/api/catalog/search?limit={limit}"))
    assert client.get("/api/catalog/search?limit=2").status_code == 200


@pytest.mark.parametrize(("query", "named"), [("kind=spaceship", "kind: unknown kind 'spaceship'"),
                                               ("sort=newest-first", "sort: unknown sort 'newest-first'"),
                                               ("q=" + "x" * 501, "query: String should have at most 500")])
def test_a_search_is_checked_by_the_model_the_mcp_tool_uses_too(client, query, named):
    assert named in refused(client.get(f"/api/catalog/search?{query}"))


@pytest.mark.parametrize("priority", [10**30, -(10**30), 2**63, 1_000_001, True, 1.5, "1"])
def test_a_priority_out_of_range_or_of_another_type_is_a_400(client, priority):
    for path, body in (("/api/jobs", {"kind": "install", "params": {}, "priority": priority}),
                       ("/api/installs", {"request": "zishu/hero", "priority": priority}),
                       ("/api/jobs/1/priority", {"priority": priority})):
        assert "priority" in refused(client.post(path, json=body)), path


@pytest.mark.parametrize("body, reason", [
    ("[" * 100_000 + "]" * 100_000, "nested more than 64 deep"),
    ('{"a":' * 65 + "1" + "}" * 65, "nested more than 64 deep"),
    ('{"kind": "\\ud800"}', "lone surrogate"),
    ('{"\\udfff": 1}', "lone surrogate"),
    ('{"priority": NaN}', "NaN"),
    ('{"priority": -Infinity}', "-Infinity"),
    ('{"priority": 1e999}', "too large"),
    ('{"priority": ' + "1" * 5000 + "}", "not JSON"),
    (b'{"kind": "\xff"}', "not JSON"),
])
def test_bad_json_is_a_400_saying_why(client, body, reason):
    for path in ("/api/jobs", "/api/settings", "/v1/chat/completions", "/api/characters"):
        send = client.put if path == "/api/settings" else client.post
        message = refused(send(path, data=body, content_type="application/json"))
        assert "not JSON" in message and reason in message, (path, message)


def test_a_big_body_is_a_413_whatever_its_type(client):
    for content_type in ("text/plain", "application/json", "application/octet-stream"):
        message = refused(client.post("/api/jobs", data=b"x" * (10 * LIMIT), content_type=content_type),
                          413, "REQUEST_ENTITY_TOO_LARGE")
        assert str(LIMIT) in message


@pytest.mark.parametrize("since", ["nan", "NaN", "inf", "-inf", "1e999", "-1", "1e12", "abc", "²"])
def test_a_job_stream_since_that_is_no_timestamp_is_a_400(client, since):
    assert "since=" in refused(client.get(f"/api/jobs/stream?since={since}"))


def test_an_unexpected_error_never_shows_its_text(runtime):
    from flask import Blueprint

    from zishu.web.app import create_app

    app = create_app(runtime, SECRET)
    client = app.test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN=SECRET)
    crashing = Blueprint("crashing", __name__)

    @crashing.get("/api/test-crash")
    def crash():
        raise KeyError("/secret/path/in/the/exception")

    app.register_blueprint(crashing)
    answer = client.get("/api/test-crash")
    message = refused(answer, 500, "ZISHU_ERROR")
    assert "KeyError" in message and "/secret/path" not in message


# -- chunked bodies on the real server ----------------------------------------------------------


@pytest.fixture(scope="module")
def server(app, home):
    from zishu.web.server import AppServer

    srv = AppServer(app.config["ZISHU_RUNTIME"], secret=SECRET, threads=4)
    srv.start()
    yield srv
    srv.stop()


def post_chunked(srv, path: str, body: bytes, piece: int = 64 * 1024) -> requests.Response:
    """POST ``body`` with Transfer-Encoding: chunked (no Content-Length), as a stream is sent."""
    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), piece):
            yield body[start:start + piece]

    headers = {"X-Zishu-Token": SECRET, "Content-Type": "application/json"}
    return requests.post(srv.url.rstrip("/") + path, data=pieces(), headers=headers, timeout=30)


def test_a_chunked_body_past_the_limit_is_a_413_never_cut(server):
    # valid JSON of 1.5 MiB: cut at 1 MiB it would have been a 400 "not JSON", or worse, taken
    big = json.dumps({"kind": "install", "params": {"pad": "x" * (LIMIT + LIMIT // 2)}}).encode()
    answer = post_chunked(server, "/api/jobs", big)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "REQUEST_ENTITY_TOO_LARGE"
    small = json.dumps({"kind": "no-such-kind", "params": {"pad": "x" * (LIMIT // 2)}}).encode()
    answer = post_chunked(server, "/api/jobs", small)  # under the limit, chunked bodies still work
    assert answer.status_code == 400 and "no job type" in answer.json()["error"]["message"]
    exact = b" " * (LIMIT - 2) + b"{}"  # exactly the limit: whole, and accepted
    assert post_chunked(server, "/api/jobs", exact).status_code == 400  # {} has no kind: read whole


# -- every route, hostile input -----------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.sampled_from([
        "²", "١٢٣", "１２", "1" * 25, "1" * 5000, "9223372036854775808", "-1", "0", "1", "nan", "NaN", "inf",
        "-inf", "1e999", "Infinity", "", " ", "../../etc/passwd", "..", "a/b", "zishu/hero", "Zishu",
        "a" * 5000, "null", "true", "[]", "{}", "%00", "\x00", "\u202e", "💥", "é", "qwen2.5.", "enable",
    ]),
    st.text(max_size=30).filter(lambda s: "/" not in s),
)
QUERY_NAMES = ["limit", "q", "kind", "tag", "license", "base_model", "sort", "version", "since", "v", "token",
               "page", "model", "character"]
FIELDS = ["request", "id", "priority", "kind", "params", "url", "catalog_url", "companion_models", "text",
          "character", "models", "messages", "model", "stream", "max_tokens", "temperature", "name", "persona",
          "role", "content", "expression", "motion", "pinned", "audio", "position", "llm", "tts", "asr"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([10**30, -(10**30), 2**63, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False), HOSTILE_TEXT,
    st.sampled_from(["\ud800", "a\udfffb"]),  # lone surrogates: json.dumps writes them as \u escapes
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=3),
    max_leaves=8,
)
RAW_BODIES = st.sampled_from([
    "[" * 100_000 + "]" * 100_000, '{"a": NaN}', '{"priority": 1e999}', '{"kind": "\\ud800"}', "not json",
    '{"a":' * 200 + "1" + "}" * 200, b"\xff\xfe\x00", "", "null", "[]", '"text"', "1" * 5000,
])
BODIES = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    RAW_BODIES,
)


def _routes() -> list[tuple[str, str]]:
    """(method, rule) for every route of the app (read from a fresh app's URL map)."""
    import tempfile

    from zishu.runtime import Runtime
    from zishu.web.app import create_app

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZISHU_HOME", tmp)
        runtime = Runtime(os.path.join(tmp, "home"))
        try:
            rules = list(create_app(runtime, SECRET).url_map.iter_rules())
        finally:
            runtime.close()
    return sorted((method, rule.rule) for rule in rules for method in rule.methods - {"HEAD", "OPTIONS"}
                  if rule.endpoint != "static")


ROUTES = _routes()


def fill(rule: str, values: list[str]) -> str:
    """``rule`` with each ``<converter:name>`` replaced by the next of ``values`` (percent-encoded)."""
    from urllib.parse import quote

    out, rest, n = "", rule, 0
    while "<" in rest:
        before, _, after = rest.partition("<")
        name, _, rest = after.partition(">")
        keep = "/" if name.startswith("path:") else ""
        out += before + (quote(values[n % len(values)], safe=keep) or "x")
        n += 1
    return out + rest


def test_the_fuzz_drives_every_route():
    assert len(ROUTES) >= 60
    assert ("GET", "/api/jobs/<job>") in ROUTES and ("POST", "/v1/chat/completions") in ROUTES


@pytest.mark.parametrize("method, rule", ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
def test_no_route_answers_5xx_to_hostile_input(client, method, rule):
    @settings(max_examples=8, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(path=st.lists(HOSTILE_TEXT, min_size=1, max_size=3),
           query=st.dictionaries(st.sampled_from(QUERY_NAMES), HOSTILE_TEXT, max_size=3),
           body=BODIES)
    def check(path: list[str], query: dict[str, str], body: str | bytes) -> None:
        url = fill(rule, path)
        sent = {"data": body, "content_type": "application/json"} if method != "GET" else {}
        response = client.open(url, method=method, query_string=query, **sent)
        try:
            assert response.status_code < 500, (method, url, query, body[:200],
                                                 response.get_data(as_text=True)[:500])
            if response.status_code >= 400 and url.startswith(("/api/", "/v1/")):
                error = response.get_json()["error"]
                assert isinstance(error["code"], str) and error["code"], error
                assert "Traceback" not in error["message"]
        finally:
            response.close()  # an event stream that was accepted is never read

    check()
