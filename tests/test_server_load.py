"""The server holds load: a deep listen backlog, connections that say nothing never hold a worker,
a request that stops half-way through its headers is closed, and open event streams are capped
below the worker count with a clear error. A real cheroot server on 127.0.0.1 in this process."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from zishu.web.security import HEADER
from zishu.web.server import BACKLOG, AppServer


@pytest.fixture
def serve(runtime) -> Iterator:
    """Start an ``AppServer`` over the test's runtime with the given settings; stopped afterwards."""
    started: list[AppServer] = []

    def start(**settings) -> AppServer:
        server = AppServer(runtime, **settings).start()
        started.append(server)
        return server

    yield start
    runtime.stopping.set()
    for server in started:
        server.stop()


def get(server: AppServer, path: str, **kwargs) -> requests.Response:
    return requests.get(server.url.rstrip("/") + path, headers={HEADER: server.secret}, timeout=30, **kwargs)


def burst(count: int, call) -> list[object]:
    """``call()`` from ``count`` threads released at once; each one's status code or exception."""
    start, results = threading.Barrier(count), [None] * count

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = call()
        except Exception as e:  # a reset or a timeout: what the test counts
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def still_open(sock: socket.socket) -> bool:
    """The server neither answered nor closed ``sock``."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""  # (data: the server answered something, so it took the connection)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_the_listen_backlog_is_deep(serve):
    server = serve()
    shown = subprocess.run(["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True, check=True)
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert int(shown.stdout.split()[2]) == min(BACKLOG, somaxconn)  # Send-Q of a listening socket: its backlog


def test_200_concurrent_gets_and_50_concurrent_posts_are_all_answered(serve):
    server = serve()
    url = server.url.rstrip("/")
    gets = burst(200, lambda: requests.get(url + "/api/health", headers={HEADER: server.secret},
                                           timeout=60).status_code)
    assert gets == [200] * 200
    posts = burst(50, lambda: requests.post(url + "/api/open", json={"url": "zishu://resource/acme/mei"},
                                            headers={HEADER: server.secret}, timeout=60).status_code)
    assert posts == [200] * 50


def test_connections_that_send_nothing_hold_no_worker(serve):
    server = serve(threads=4, idle_timeout=120)  # idle ones would stay long on a worker if they held one
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
    try:
        assert get(server, "/api/health").status_code == 200
        assert all(still_open(s) for s in idle)  # answered while every idle connection still waits
    finally:
        for s in idle:
            s.close()


def test_a_request_that_stops_inside_its_headers_is_closed(serve):
    server = serve(idle_timeout=120, headers_timeout=1)
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        slow.settimeout(60)
        answer = b""
        while chunk := slow.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408")


def test_event_streams_are_capped_with_a_clear_error_and_requests_still_answer(serve, runtime):
    server = serve(stream_limit=3)
    streams = [get(server, "/api/jobs/stream", stream=True) for _ in range(3)]
    try:
        assert [s.status_code for s in streams] == [200] * 3
        refused = get(server, "/api/jobs/stream")
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert error["code"] == "BUSY" and "the limit is 3" in error["message"]
        assert get(server, "/api/health").status_code == 200
        runtime.stopping.set()  # the open streams end, and give their slots back
        for s in streams:
            assert s.content.startswith(b"retry:")  # (read to the end)
        runtime.stopping.clear()
        again = get(server, "/api/jobs/stream", stream=True)
        assert again.status_code == 200
        runtime.stopping.set()
        again.close()
    finally:
        for s in streams:
            s.close()


def test_a_stream_whose_window_went_away_gives_its_slot_back_within_a_few_keep_alives(serve):
    from zishu.web.streams import KEEP_ALIVE

    server = serve(stream_limit=2)
    for _ in range(2):  # pages left one after another, as a user clicking through the app leaves them
        left = [get(server, "/api/jobs/stream", stream=True) for _ in range(2)]
        assert [s.status_code for s in left] == [200, 200]
        for s in left:
            assert next(s.iter_content(16)).startswith(b"retry:")
            s.close()
        deadline = time.monotonic() + 4 * KEEP_ALIVE + 5  # two comments to notice, and some slack
        while (again := get(server, "/api/jobs/stream", stream=True)).status_code == 503:
            assert time.monotonic() < deadline, "the slots of closed streams did not come back"
            time.sleep(0.2)
        assert again.status_code == 200
        again.close()
        deadline = time.monotonic() + 4 * KEEP_ALIVE + 5
        while server.app.config["ZISHU_STREAM_SLOTS"].open:
            assert time.monotonic() < deadline, "a closed stream kept its slot"
            time.sleep(0.2)


def test_the_server_keeps_more_workers_than_event_streams(runtime):
    server = AppServer(runtime)
    assert server.app.config["ZISHU_STREAM_LIMIT"] < server.server.requests.min
    assert server.server.timeout <= 5 and server.server.headers_timeout <= 2
