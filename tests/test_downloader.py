"""The downloader against a real HTTP server on 127.0.0.1 that cuts, stalls, lies and fails on cue."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pluggy
import pytest

from zishu import hookspecs, plugins
from zishu.catalog.manifest import FileEntry
from zishu.errors import ChecksumMismatch, DownloadError, JobCancelled
from zishu.hookspecs import hookimpl
from zishu.resources.downloader import Downloader, Throttle, part_key
from zishu.resources.locks import reconcile

KiB = 1024
MiB = 1024 * KiB
PIECE = 16 * KiB


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Served:
    """One file on a FileServer, answered through its fault hook with knobs a test turns.

    ``plan`` lists faults for the next GETs, used in order (then plain answers):
      {"status": 503, "retry_after": "0"}  answer that status, no body
      {"cut": n}          send n body bytes, then drop the connection
      {"stall": (n, s)}   send n body bytes, then go silent for s seconds
      {"whole": True}     ignore Range: answer 200 with the whole file
      {"shift": k}        claim a Content-Range k bytes off the one asked for
    ``delay`` sleeps after each 16 KiB piece (a slow link). ``gets`` records each GET's Range
    header, ``if_ranges`` its If-Range, ``sent`` the body bytes written.
    """

    def __init__(self, server, path: str, body: bytes, *, etag: str | None = '"v1"',
                 ranges: bool = True, plan: list[dict] | None = None, delay: float = 0.0,
                 headers: dict | None = None) -> None:
        self.server, self.path, self.body = server, path, body
        self.etag, self.ranges, self.plan, self.delay = etag, ranges, list(plan or []), delay
        self.headers = headers or {}
        self.gets: list[str | None] = []
        self.if_ranges: list[str | None] = []
        self.heads = 0
        self.sent = 0
        self._lock = threading.Lock()
        server.faults[path] = self.answer

    @property
    def url(self) -> str:
        return self.server.url + self.path

    def entry(self, **overrides) -> FileEntry:
        fields = {"name": self.path.rsplit("/", 1)[-1], "url": self.url, "sha256": sha(self.body),
                  "size": len(self.body), **overrides}
        return FileEntry(**fields)

    def answer(self, h) -> bool:
        head = h.command == "HEAD"
        fault: dict = {}
        with self._lock:
            if head:
                self.heads += 1
            else:
                fault = self.plan.pop(0) if self.plan else {}
                self.gets.append(h.headers.get("Range"))
                self.if_ranges.append(h.headers.get("If-Range"))
        n = len(self.body)
        if "status" in fault:
            h.send_response(fault["status"])
            if "retry_after" in fault:
                h.send_header("Retry-After", fault["retry_after"])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return True
        start, end, status = 0, n - 1, 200
        asked, if_range = h.headers.get("Range"), h.headers.get("If-Range")
        if asked and self.ranges and not fault.get("whole") and if_range in (None, self.etag):
            a, _, b = asked.removeprefix("bytes=").partition("-")
            start, end, status = int(a), min(int(b), n - 1) if b else n - 1, 206
            if start >= n:
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{n}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return True
        h.send_response(status)
        h.send_header("Content-Length", str(end - start + 1))
        if self.ranges:
            h.send_header("Accept-Ranges", "bytes")
        if self.etag:
            h.send_header("ETag", self.etag)
        for name, value in self.headers.items():
            h.send_header(name, value)
        if status == 206:
            shift = fault.get("shift", 0)
            h.send_header("Content-Range", f"bytes {start + shift}-{end + shift}/{n}")
        h.end_headers()
        if head:
            return True
        limit = end + 1 - start
        if "cut" in fault:
            limit = min(limit, fault["cut"])
        stall_at, stall_for = fault.get("stall", (None, 0))
        pos, written = start, 0
        try:
            while written < limit:
                if written == stall_at:
                    time.sleep(stall_for)
                step = min(PIECE, limit - written, (stall_at - written) if stall_at and written < stall_at else PIECE)
                h.wfile.write(self.body[pos : pos + step])
                with self._lock:
                    self.sent += step
                pos, written = pos + step, written + step
                if self.delay:
                    time.sleep(self.delay)
        except OSError:
            h.close_connection = True
            return True
        if written < end + 1 - start:
            h.close_connection = True  # the body was cut short: drop the connection
            h.connection.shutdown(socket.SHUT_RDWR)
        return True


def downloader(tmp_path: Path, **options) -> Downloader:
    settings = {"retries": 3, "backoff": 0.01, "stall_timeout": 5.0, "parallel_min_size": 64 * MiB, **options}
    return Downloader(tmp_path / "partials", **settings)


def parts(tmp_path: Path) -> list[str]:
    folder = tmp_path / "partials"
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".part", ".json")) if folder.exists() else []


# -- the plain path --------------------------------------------------------------------------


def test_downloads_verifies_and_moves_into_place(tmp_path, file_server):
    served = Served(file_server, "/models/weights.bin", payload(300 * KiB))
    dest = tmp_path / "home" / "resources" / "alice" / "m" / "1.0.0" / "weights.bin"
    got = downloader(tmp_path).fetch(served.entry(), dest)
    assert dest.read_bytes() == served.body
    size = len(served.body)
    assert (got.path, got.sha256, got.size, got.transferred) == (dest, sha(served.body), size, size)
    assert served.gets == [None] and parts(tmp_path) == []


def test_an_empty_file_is_a_file_too(tmp_path, file_server):
    served = Served(file_server, "/empty.txt", b"")
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "empty.txt")
    assert got.size == 0 and got.sha256 == sha(b"") and (tmp_path / "empty.txt").read_bytes() == b""


def test_a_complete_dest_is_never_downloaded_again(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(100 * KiB))
    dest = tmp_path / "w.bin"
    downloader(tmp_path).fetch(served.entry(), dest)
    again = downloader(tmp_path).fetch(served.entry(), dest)
    assert again.transferred == 0 and again.sha256 == sha(served.body)
    assert len(served.gets) == 1


# -- resuming ----------------------------------------------------------------------------------


def test_a_cut_connection_resumes_with_a_range_request(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(400 * KiB), plan=[{"cut": 150 * KiB}])
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)
    assert served.gets == [None, f"bytes={150 * KiB}-"]
    assert served.if_ranges[1] == '"v1"'
    assert served.sent <= len(served.body) + 64 * KiB
    assert got.transferred == len(served.body)


def test_a_new_downloader_resumes_the_part_an_earlier_one_left(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(400 * KiB), plan=[{"cut": 100 * KiB}])
    with pytest.raises(DownloadError):
        downloader(tmp_path, retries=0).fetch(served.entry(), tmp_path / "w.bin")
    part = tmp_path / "partials" / f"{part_key(served.entry())}.part"
    assert part.stat().st_size == 100 * KiB
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body) and got.transferred == 300 * KiB
    assert served.gets == [None, f"bytes={100 * KiB}-"]
    assert parts(tmp_path) == []


def test_a_deleted_part_starts_over(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(200 * KiB), plan=[{"cut": 50 * KiB}])
    with pytest.raises(DownloadError):
        downloader(tmp_path, retries=0).fetch(served.entry(), tmp_path / "w.bin")
    (tmp_path / "partials" / f"{part_key(served.entry())}.part").unlink()
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)
    assert served.gets == [None, None]


def test_a_server_answering_200_to_a_range_restarts_cleanly(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(300 * KiB), plan=[{"cut": 100 * KiB}, {"whole": True}])
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)
    assert served.gets == [None, f"bytes={100 * KiB}-"]
    assert got.transferred == 100 * KiB + 300 * KiB


def test_a_changed_file_behind_if_range_restarts_cleanly(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(300 * KiB), plan=[{"cut": 100 * KiB}])
    with pytest.raises(DownloadError):
        downloader(tmp_path, retries=0).fetch(served.entry(), tmp_path / "w.bin")
    served.etag = '"v2"'  # the server now has "another" file: If-Range "v1" gets the whole of it
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body) and got.transferred == 300 * KiB
    assert served.if_ranges[1] == '"v1"'


def test_a_complete_part_is_verified_and_moved_without_a_request(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(100 * KiB))
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / f"{part_key(served.entry())}.part").write_bytes(served.body)
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body) and got.transferred == 0 and served.gets == []


def test_416_with_a_complete_part_verifies_it(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(100 * KiB))
    entry = served.entry(size=None)
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / f"{part_key(entry)}.part").write_bytes(served.body)
    got = downloader(tmp_path, connections=1).fetch(entry, tmp_path / "w.bin")
    assert got.sha256 == sha(served.body) and got.transferred == 0
    assert served.gets == [f"bytes={100 * KiB}-"]


def test_416_with_a_stale_longer_part_starts_over(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(100 * KiB))
    entry = served.entry(size=None)
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / f"{part_key(entry)}.part").write_bytes(payload(150 * KiB, seed=9))
    got = downloader(tmp_path, connections=1).fetch(entry, tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)
    assert served.gets == [f"bytes={150 * KiB}-", None]


def test_a_wrong_content_range_is_discarded(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(300 * KiB), plan=[{"cut": 100 * KiB}, {"shift": -KiB}])
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)
    assert served.gets == [None, f"bytes={100 * KiB}-", None]


# -- retries and mirrors -------------------------------------------------------------------


def test_5xx_and_429_are_retried(tmp_path, file_server):
    plan = [{"status": 503}, {"status": 500}, {"status": 429, "retry_after": "0"}]
    served = Served(file_server, "/w.bin", payload(64 * KiB), plan=plan)
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body) and len(served.gets) == 4


def test_a_stall_is_abandoned_and_the_retry_resumes(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(256 * KiB), plan=[{"stall": (96 * KiB, 3.0)}])
    got = downloader(tmp_path, stall_timeout=0.3).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)
    assert served.gets[0] is None and len(served.gets) == 2
    assert 0 < int(served.gets[1].removeprefix("bytes=").rstrip("-")) <= 96 * KiB  # all of it, unless a slow machine
    assert served.sent <= len(served.body) + MiB


def test_404_falls_through_to_the_mirrors_in_order(tmp_path, file_server):
    body = payload(64 * KiB)
    gone = Served(file_server, "/gone.bin", body, plan=[{"status": 404}] * 10)
    forbidden = Served(file_server, "/forbidden.bin", body, plan=[{"status": 403}] * 10)
    mirror = Served(file_server, "/mirror/w.bin", body)
    entry = gone.entry(mirrors=[forbidden.url, mirror.url])
    got = downloader(tmp_path).fetch(entry, tmp_path / "w.bin")
    assert got.sha256 == sha(body)
    assert (len(gone.gets), len(forbidden.gets), len(mirror.gets)) == (1, 1, 1)


def test_when_every_url_fails_the_error_names_each(tmp_path, file_server):
    body = payload(16 * KiB)
    gone = Served(file_server, "/gone.bin", body, plan=[{"status": 404}] * 10)
    busy = Served(file_server, "/busy.bin", body, plan=[{"status": 503}] * 10)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/w.bin"
    entry = gone.entry(mirrors=[busy.url, refused])
    with pytest.raises(DownloadError) as caught:
        downloader(tmp_path, retries=1).fetch(entry, tmp_path / "w.bin")
    message = str(caught.value)
    assert "gone.bin" in message and caught.value.code == "DOWNLOAD_FAILED"
    assert f"{gone.url}: HTTP 404" in message
    assert f"{busy.url}: HTTP 503" in message
    assert f"{refused}: could not connect" in message
    assert len(busy.gets) == 2 and not (tmp_path / "w.bin").exists()


# -- verification ------------------------------------------------------------------------------


def test_a_checksum_failure_is_fetched_once_more_then_raises_and_cleans_up(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(64 * KiB))
    promised = sha(b"other bytes")
    with pytest.raises(ChecksumMismatch) as caught:
        downloader(tmp_path).fetch(served.entry(sha256=promised), tmp_path / "w.bin")
    message = str(caught.value)
    assert "w.bin" in message and promised in message and sha(served.body) in message
    assert caught.value.code == "CHECKSUM_MISMATCH"
    assert served.gets == [None, None]
    assert parts(tmp_path) == [] and not (tmp_path / "w.bin").exists()


def test_a_corrupt_prefix_is_replaced_by_a_fetch_from_zero(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(200 * KiB))
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / f"{part_key(served.entry())}.part").write_bytes(payload(80 * KiB, seed=5))
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)
    assert served.gets == [f"bytes={80 * KiB}-", None]


def test_hugging_face_headers_verify_a_file_without_a_declared_sha256(tmp_path, file_server):
    body = payload(128 * KiB)
    cdn = Served(file_server, "/cdn/lfs/abc", body, etag=None)
    published = {"sha": sha(body)}

    def resolve(h) -> bool:  # the hub: 302 to its CDN, naming the LFS object's sha256 and size
        h.send_response(302)
        h.send_header("Location", cdn.path)
        h.send_header("X-Repo-Commit", "0" * 40)
        h.send_header("X-Linked-Etag", f'"{published["sha"]}"')
        h.send_header("X-Linked-Size", str(len(body)))
        h.send_header("ETag", f'"{published["sha"]}"')
        h.send_header("Content-Length", "0")
        h.end_headers()
        return True

    file_server.faults["/org/m/resolve/main/model.safetensors"] = resolve
    entry = FileEntry(name="model.safetensors", url=file_server.url + "/org/m/resolve/main/model.safetensors")
    got = downloader(tmp_path).fetch(entry, tmp_path / "model.safetensors")
    assert (got.sha256, got.size) == (sha(body), len(body))
    again = downloader(tmp_path).fetch(entry, tmp_path / "model.safetensors")
    assert again.transferred == 0 and len(cdn.gets) == 1

    published["sha"] = sha(b"not these bytes")
    with pytest.raises(ChecksumMismatch, match=published["sha"]):
        downloader(tmp_path).fetch(entry, tmp_path / "other" / "model.safetensors")
    assert not (tmp_path / "other" / "model.safetensors").exists()


# -- concurrency -------------------------------------------------------------------------------


def test_ten_threads_asking_for_one_file_share_one_transfer(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(512 * KiB), delay=0.005)
    dl = downloader(tmp_path)
    dest = tmp_path / "w.bin"
    start = threading.Barrier(10)

    def click(_):
        start.wait()
        return dl.fetch(served.entry(), dest)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(click, range(10)))
    assert len(served.gets) == 1 and served.sent == len(served.body)
    assert {r.sha256 for r in results} == {sha(served.body)} and {r.path for r in results} == {dest}
    assert sum(r.transferred for r in results) == len(served.body)


def test_different_files_at_once_do_not_interfere(tmp_path, file_server):
    files = [Served(file_server, f"/f{i}.bin", payload(256 * KiB, seed=i), delay=0.002,
                    plan=[{"cut": 40 * KiB * (i + 1)}]) for i in range(4)]
    dl = downloader(tmp_path)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda s: dl.fetch(s.entry(), tmp_path / "out" / s.path[1:]), files))
    for i, (served, got) in enumerate(zip(files, results, strict=True)):
        assert got.path.read_bytes() == served.body
        assert served.gets == [None, f"bytes={40 * KiB * (i + 1)}-"]
    assert parts(tmp_path) == []


CHILD = """
import json, sys
from pathlib import Path
from zishu.catalog.manifest import FileEntry
from zishu.resources.downloader import Downloader
args = json.loads(sys.argv[1])
got = Downloader(Path(args["partials"]), retries=2, backoff=0.01).fetch(FileEntry(**args["entry"]), Path(args["dest"]))
print(json.dumps({"sha256": got.sha256, "transferred": got.transferred}))
"""


def child(tmp_path: Path, entry: FileEntry, dest: Path) -> subprocess.Popen:
    args = {"partials": str(tmp_path / "partials"), "entry": entry.model_dump(), "dest": str(dest)}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE, text=True)


def test_kill_9_mid_download_then_a_new_run_finishes_with_little_extra(tmp_path, file_server):
    served = Served(file_server, "/big.bin", payload(4 * MiB), delay=0.02)  # about 800 KiB/s
    entry, dest = served.entry(), tmp_path / "big.bin"
    part = tmp_path / "partials" / f"{part_key(entry)}.part"
    proc = child(tmp_path, entry, dest)
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size >= 256 * KiB):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    served.delay = 0
    got = downloader(tmp_path).fetch(entry, dest)  # the dead child's lock does not block
    assert got.sha256 == sha(served.body) and 0 < got.transferred < len(served.body)
    assert served.gets[-1].startswith("bytes=")
    assert served.sent <= len(served.body) + MiB


def test_two_processes_racing_for_one_file_make_one_transfer(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(MiB), delay=0.01)
    entry, dest = served.entry(), tmp_path / "w.bin"
    procs = [child(tmp_path, entry, dest) for _ in range(2)]
    outputs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert {o["sha256"] for o in outputs} == {sha(served.body)} and sha(dest.read_bytes()) == sha(served.body)
    assert sorted(o["transferred"] for o in outputs) == [0, len(served.body)]
    assert len(served.gets) == 1


# -- parallel ranges -------------------------------------------------------------------------


def test_a_big_file_comes_in_parallel_ranges(tmp_path, file_server):
    served = Served(file_server, "/big.bin", payload(MiB))
    got = downloader(tmp_path, connections=4, parallel_min_size=256 * KiB).fetch(served.entry(), tmp_path / "big.bin")
    assert got.sha256 == sha(served.body) and got.transferred == MiB
    q = 256 * KiB
    assert sorted(served.gets) == sorted(f"bytes={i * q}-{(i + 1) * q - 1}" for i in range(4))
    assert served.heads == 1 and parts(tmp_path) == []


def test_parallel_ranges_resume_only_what_is_missing(tmp_path, file_server):
    served = Served(file_server, "/big.bin", payload(MiB), plan=[{"cut": 100 * KiB}])
    got = downloader(tmp_path, connections=4, parallel_min_size=256 * KiB).fetch(served.entry(), tmp_path / "big.bin")
    assert got.sha256 == sha(served.body)
    first = int(served.gets[0].removeprefix("bytes=").split("-")[0])
    assert len(served.gets) == 5
    assert served.gets[-1] == f"bytes={first + 100 * KiB}-{first + 256 * KiB - 1}"
    assert served.sent == MiB


def test_parallel_falls_back_to_one_stream_when_ranges_are_refused(tmp_path, file_server):
    served = Served(file_server, "/big.bin", payload(MiB), plan=[{"whole": True}])
    got = downloader(tmp_path, connections=4, parallel_min_size=256 * KiB).fetch(served.entry(), tmp_path / "big.bin")
    assert got.sha256 == sha(served.body)
    assert served.gets[-1] is None and len(served.gets) == 5


# -- bandwidth, hooks, housekeeping ------------------------------------------------------------


def test_the_token_bucket_keeps_the_average_rate():
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = Throttle(1000, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        bucket.take(500)
    # 5000 bytes at 1000 B/s, of which the first quarter second's worth (250) came as a burst
    assert now[0] == pytest.approx(4.75) and bucket.slept == pytest.approx(4.75)


def test_a_bandwidth_limit_makes_the_downloader_wait(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(128 * KiB))
    dl = downloader(tmp_path, bandwidth_limit=256 * KiB)
    got = dl.fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)
    # the first 64 KiB pass as a burst; the rest costs up to 0.25 s of waiting, less what the
    # transfer itself took: any waiting at all shows the limiter at work
    assert dl.chunk == 32 * KiB and dl.throttle.slept > 0


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    @hookimpl
    def on_download_start(self, url, name, sha256, size, resumed_from):
        self.events.append(("start", name, resumed_from))

    @hookimpl
    def on_download_progress(self, name, done, total):
        self.events.append(("progress", name, done, total))

    @hookimpl
    def on_download_error(self, url, name, error, will_retry):
        self.events.append(("error", name, will_retry, getattr(error, "code", None)))

    @hookimpl
    def on_download_complete(self, name, path, sha256, size):
        self.events.append(("complete", name, sha256, size))


def test_hooks_follow_the_download_in_order(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(512 * KiB), delay=0.01, plan=[{"status": 503}])
    recorder, seen = Recorder(), []
    plugins.pm.register(recorder)
    try:
        dl = downloader(tmp_path, progress=lambda *args: seen.append(args))
        dl.fetch(served.entry(), tmp_path / "w.bin")
    finally:
        plugins.pm.unregister(recorder)
    kinds = [e[0] for e in recorder.events]
    assert kinds[:3] == ["start", "error", "start"] and kinds[-1] == "complete"
    assert recorder.events[1] == ("error", "w.bin", True, "DOWNLOAD_FAILED")
    assert recorder.events[-1] == ("complete", "w.bin", sha(served.body), 512 * KiB)
    progress = [e[2] for e in recorder.events if e[0] == "progress"]
    assert progress and progress == sorted(progress) and progress[-1] <= 512 * KiB
    assert set(kinds[3:-1]) == {"progress"}
    assert seen and all(name == "w.bin" and total == 512 * KiB for name, _, total in seen)


def test_a_raising_hook_does_not_break_the_download(tmp_path, file_server):
    class Broken:
        @hookimpl
        def on_download_start(self, url, name, sha256, size, resumed_from):
            raise RuntimeError("start")

        @hookimpl
        def on_download_progress(self, name, done, total):
            raise RuntimeError("progress")

        @hookimpl
        def on_download_complete(self, name, path, sha256, size):
            raise RuntimeError("complete")

    pm = pluggy.PluginManager("zishu")
    pm.add_hookspecs(hookspecs)
    pm.register(Broken())
    served = Served(file_server, "/w.bin", payload(64 * KiB))

    def broken_progress(*args):
        raise RuntimeError("display")

    got = downloader(tmp_path, hook=pm.hook, progress=broken_progress).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body)


def test_reconcile_removes_only_leftovers_nothing_can_use(tmp_path):
    partials = tmp_path / "partials"
    partials.mkdir()
    keep = [partials / "a.part", partials / "a.json", partials / "b.part", partials / "c.lock"]
    gone = [partials / "d.json", partials / "e.json.123-456.tmp"]
    for path in keep + gone:
        path.write_bytes(b"x")
    assert sorted(reconcile(partials)) == sorted(gone)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)
    assert reconcile(tmp_path / "missing") == []


def test_the_dest_may_live_on_another_disk(tmp_path, file_server):
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem to download across")
    served = Served(file_server, "/w.bin", payload(64 * KiB))
    dest = shm / f"zishu-test-{os.getpid()}" / "w.bin"
    try:
        got = downloader(tmp_path).fetch(served.entry(), dest)
        assert dest.read_bytes() == served.body and got.sha256 == sha(served.body)
        assert parts(tmp_path) == []
    finally:
        dest.unlink(missing_ok=True)
        dest.parent.rmdir()


# -- outages: waited out on a simulated clock ---------------------------------------------------


class SimulatedTime:
    """A clock and a sleep for the Downloader: sleeping moves the clock, no real time passes."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def outage(served: Served, time_: SimulatedTime, *, after_gets: int, lasting: float) -> list[float]:
    """Take ``served`` off the network once it has answered ``after_gets`` GETs, for ``lasting``
    simulated seconds: every request then loses its connection before any answer. Returns the
    simulated times at which requests were refused."""
    refused: list[float] = []
    began: list[float] = []

    def answer(h) -> bool:
        if len(served.gets) >= after_gets:
            began[:] = began or [time_.now]
            if time_.now < began[0] + lasting:
                refused.append(time_.now)
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return True
        return served.answer(h)

    served.server.faults[served.path] = answer
    return refused


def test_a_two_minute_outage_is_waited_out_and_the_download_completes(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(400 * KiB), plan=[{"cut": 100 * KiB}])
    sim = SimulatedTime()
    refused = outage(served, sim, after_gets=1, lasting=120.0)
    waits: list[tuple[str, float, str]] = []
    dl = downloader(tmp_path, retries=3, backoff=1.0, wait_for_network=True, network_wait_max=30.0,
                    clock=sim.clock, sleep=sim.sleep, waiting=lambda *args: waits.append(args))
    got = dl.fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body) and (tmp_path / "w.bin").read_bytes() == served.body
    assert got.transferred == len(served.body)  # the first 100 KiB were kept through the outage
    assert sim.now >= 120.0 and refused and refused[-1] < 120.0
    # capped exponential backoff: the retries' waits, then the outage's, doubling up to the cap
    assert [seconds for _, seconds, _ in waits] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert all(name == "w.bin" and "connection dropped" in reason for name, _, reason in waits)
    assert served.gets[-1] == f"bytes={100 * KiB}-"  # after the outage it asked only for the rest
    assert parts(tmp_path) == []


def test_while_waiting_for_the_network_other_errors_still_fail_at_once(tmp_path, file_server):
    sim = SimulatedTime()
    options = {"wait_for_network": True, "clock": sim.clock, "sleep": sim.sleep}
    gone = Served(file_server, "/gone.bin", payload(16 * KiB), plan=[{"status": 404}] * 10)
    with pytest.raises(DownloadError, match="HTTP 404"):
        downloader(tmp_path, **options).fetch(gone.entry(), tmp_path / "gone.bin")
    assert len(gone.gets) == 1 and sim.now == 0
    served = Served(file_server, "/w.bin", payload(16 * KiB))
    with pytest.raises(ChecksumMismatch):
        downloader(tmp_path, **options).fetch(served.entry(sha256=sha(b"other")), tmp_path / "w.bin")
    assert len(served.gets) == 2 and sim.now == 0


def test_an_outage_with_a_mirror_that_is_gone_waits_for_the_reachable_url(tmp_path, file_server):
    body = payload(64 * KiB)
    gone = Served(file_server, "/gone.bin", body, plan=[{"status": 404}] * 10)
    down = Served(file_server, "/down.bin", body)
    sim = SimulatedTime()
    outage(down, sim, after_gets=0, lasting=60.0)
    dl = downloader(tmp_path, retries=1, backoff=1.0, wait_for_network=True, clock=sim.clock, sleep=sim.sleep)
    got = dl.fetch(gone.entry(mirrors=[down.url]), tmp_path / "w.bin")
    assert got.sha256 == sha(body) and sim.now >= 60.0
    assert len(gone.gets) == 1  # a 404 is not asked again


def test_cancel_during_the_network_wait_stops_at_once_and_keeps_the_part(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(400 * KiB), plan=[{"cut": 100 * KiB}])
    sim = SimulatedTime()
    outage(served, sim, after_gets=1, lasting=3600.0)
    dl = downloader(tmp_path, retries=3, backoff=1.0, wait_for_network=True, clock=sim.clock, sleep=sim.sleep,
                    cancelled=lambda: sim.now >= 100.0)
    with pytest.raises(JobCancelled, match="waiting for the network"):
        dl.fetch(served.entry(), tmp_path / "w.bin")
    assert 100.0 <= sim.now <= 100.25  # noticed within one poll of the wait
    part = tmp_path / "partials" / f"{part_key(served.entry())}.part"
    assert part.stat().st_size == 100 * KiB
    served.server.faults[served.path] = served.answer  # the network is back: a retry resumes
    got = downloader(tmp_path).fetch(served.entry(), tmp_path / "w.bin")
    assert got.sha256 == sha(served.body) and got.transferred == len(served.body) - 100 * KiB


def test_without_wait_for_network_an_outage_fails_as_before(tmp_path, file_server):
    served = Served(file_server, "/w.bin", payload(64 * KiB))
    sim = SimulatedTime()
    outage(served, sim, after_gets=0, lasting=60.0)
    with pytest.raises(DownloadError, match="gave up after 3 tries"):
        downloader(tmp_path, retries=2, backoff=1.0, clock=sim.clock, sleep=sim.sleep).fetch(
            served.entry(), tmp_path / "w.bin")
    assert sim.now == 3.0  # 1 + 2: the retries' own waits, and no more
