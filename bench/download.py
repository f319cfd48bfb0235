"""Downloader throughput, memory and resume cost against a fast local server, beside curl.

    .venv/bin/python bench/download.py [--size 2G] [--repeat 2]

Writes a deterministic file of ``--size`` bytes into a temp folder, serves it from a threaded
server in its own process that sends bodies with ``os.sendfile`` (Range, HEAD and keep-alive
supported; ``/stats`` tells the body bytes sent), then prints, each beside its target:

* throughput of ``curl -o FILE`` and ``curl -o /dev/null``, and of the Downloader in one stream
  and with parallel ranges (the default for files of 64 MiB or more), each timed around
  ``fetch`` in a child process (best of ``--repeat`` interleaved rounds, each run after an
  ``os.sync()``). The Downloader also hashes, fsyncs and renames; curl does none of that, so
  ``curl -o FILE`` followed by an fsync is shown too. Target: at least 0.9x curl to a file;
* peak RSS of the downloading child processes, from ``getrusage(RUSAGE_CHILDREN)``: under 150 MB;
* resume after ``kill -9`` once the server has sent about 40%: the extra bytes the server sent
  beyond one copy of the file (what the dead process had in its socket buffers and its last
  chunk), and the time the resuming process took (re-hashing the prefix included).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

MiB = 1024 * 1024

CHILD = """
import json, resource, sys, time
from pathlib import Path
from zishu.catalog.manifest import FileEntry
from zishu.resources.downloader import Downloader
a = json.loads(sys.argv[1])
dl = Downloader(Path(a["partials"]), connections=a["connections"])
start = time.perf_counter()
got = dl.fetch(FileEntry(**a["entry"]), Path(a["dest"]))
print(json.dumps({"seconds": time.perf_counter() - start, "transferred": got.transferred, "sha256": got.sha256,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


# -- the server ------------------------------------------------------------------------------


def serve(path: Path) -> None:
    """Serve ``path`` at every URL on a free port (printed first), bodies via os.sendfile."""
    size = path.stat().st_size
    sent = [0]
    lock = threading.Lock()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock = self.request
            rfile = sock.makefile("rb")
            fd = os.open(path, os.O_RDONLY)
            try:
                while self.answer(sock, rfile, fd):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)

        def answer(self, sock, rfile, fd) -> bool:
            line = rfile.readline(65537)
            if not line.strip():
                return False
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = {}
            while (h := rfile.readline(65537)).strip():
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if target.startswith("/stats"):
                with lock:
                    body = json.dumps({"sent": sent[0]}).encode()
                    if "reset" in target:
                        sent[0] = 0
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                return True
            start, end, status = 0, size - 1, "200 OK"
            asked = headers.get("range", "")
            if asked.startswith("bytes="):
                a, _, b = asked[6:].partition("-")
                start, end, status = int(a), min(int(b), size - 1) if b else size - 1, "206 Partial Content"
                if start >= size:
                    sock.sendall(f"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\n"
                                 "Content-Length: 0\r\n\r\n".encode())
                    return True
            head = [f"HTTP/1.1 {status}", f"Content-Length: {end - start + 1}", "Accept-Ranges: bytes",
                    'ETag: "bench"', "Content-Type: application/octet-stream"]
            if status.startswith("206"):
                head.append(f"Content-Range: bytes {start}-{end}/{size}")
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            if method == "GET":
                offset, left = start, end - start + 1
                while left:
                    n = os.sendfile(sock.fileno(), fd, offset, min(left, 64 * MiB))
                    if n == 0:
                        return False
                    offset, left = offset + n, left - n
                    with lock:
                        sent[0] += n
            return headers.get("connection", "").lower() != "close"

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as server:
        print(server.server_address[1], flush=True)
        server.serve_forever()


# -- the measurements ------------------------------------------------------------------------


def make_file(path: Path, size: int) -> str:
    """Deterministic bytes (a seeded random MiB, each copy stamped with its index); returns sha256."""
    block = bytearray(random.Random(0).randbytes(MiB))
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(0, size, MiB):
            block[:8] = (i // MiB).to_bytes(8, "little")
            piece = bytes(block[: min(MiB, size - i)])
            f.write(piece)
            digest.update(piece)
    return digest.hexdigest()


def stats(url: str, reset: bool = False) -> int:
    with urllib.request.urlopen(url + "/stats" + ("?reset" if reset else "")) as r:
        return json.load(r)["sent"]


def child(work: Path, entry: dict, dest: Path, connections: int) -> subprocess.Popen:
    args = {"partials": str(work / "partials"), "entry": entry, "dest": str(dest), "connections": connections}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE, text=True)


def download(work: Path, entry: dict, connections: int) -> dict:
    dest = work / "out" / "file.bin"
    os.sync()  # every run starts with no dirty pages left by the one before
    proc = child(work, entry, dest, connections)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"the downloader failed (exit {proc.returncode})")
    result = json.loads(out)
    assert result["sha256"] == entry["sha256"], "wrong bytes"
    dest.unlink()
    return result


def curl(url: str, target: str, fsync: bool = False) -> float:
    if target != os.devnull:
        Path(target).unlink(missing_ok=True)  # like the Downloader's, a fresh file each time
    os.sync()
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", target, url], check=True)
    if fsync:  # what the Downloader does before moving a file into place
        fd = os.open(target, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return time.perf_counter() - start


def resume_after_kill(work: Path, url: str, entry: dict, connections: int) -> dict:
    size = entry["size"]
    dest = work / "out" / "file.bin"
    stats(url, reset=True)
    proc = child(work, entry, dest, connections)
    while stats(url) < 0.4 * size:
        if proc.poll() is not None:
            raise SystemExit("the download finished before it could be killed; use a larger --size")
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = stats(url)
    result = download(work, entry, connections)
    return {"at_kill": at_kill, "seconds": result["seconds"], "transferred": result["transferred"],
            "extra": stats(url) - size}


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="2G", help="file size, e.g. 2G, 512M (default 2G)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the throughput runs; the best counts")
    parser.add_argument("--dir", type=Path, help="where to serve from and download to (default: a temp folder)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)

    from rich.console import Console
    from rich.table import Table

    size = parse_size(args.size)
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="zishu-bench-download-", dir=args.dir))
    server = None
    try:
        source = work / "served.bin"
        console.print(f"writing a {size / MiB:,.0f} MiB file into {work} ...")
        digest = make_file(source, size)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(source)], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        entry: dict[str, Any] = {"name": "file.bin", "url": url + "/file.bin", "sha256": digest, "size": size}

        # Rounds interleave the contenders, so a slow spell of the disk or the machine hits them alike.
        runs: dict[str, list[float]] = {}
        have_curl = shutil.which("curl") is not None
        for _ in range(args.repeat):
            if have_curl:
                runs.setdefault("curl -o FILE", []).append(curl(entry["url"], str(work / "curl.out")))
                runs.setdefault("curl -o FILE, then fsync", []).append(curl(entry["url"], str(work / "curl.out"), True))
                runs.setdefault("curl -o /dev/null", []).append(curl(entry["url"], os.devnull))
            for label, connections in (("Downloader, one stream", 1), ("Downloader, 4 parallel ranges (default)", 4)):
                runs.setdefault(label, []).append(download(work, entry, connections)["seconds"])
        (work / "curl.out").unlink(missing_ok=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux

        table = Table(title=f"Downloader, {size / MiB:,.0f} MiB from 127.0.0.1, {os.cpu_count()} CPUs, "
                            f"best of {args.repeat} (slowest)")
        for column in ("measure", "figure", "target"):
            table.add_column(column)
        rate = lambda seconds: size / MiB / seconds  # noqa: E731
        baseline = min(runs["curl -o FILE"]) if have_curl else None
        synced = min(runs["curl -o FILE, then fsync"]) if have_curl else None
        if not have_curl:
            table.add_row("curl", "not installed: no baseline", "")
        for label, seconds in runs.items():
            figure = f"{rate(min(seconds)):,.0f} MiB/s ({rate(max(seconds)):,.0f})"
            if label.startswith("Downloader") and baseline:
                figure += f" = {baseline / min(seconds):.2f}x curl -o FILE"
            target = "baseline" if label == "curl -o FILE" else ">= 0.9x curl -o FILE" if label.startswith("D") else ""
            if label.startswith("Downloader") and synced:
                figure += f", {synced / min(seconds):.2f}x curl + fsync"
            table.add_row(label, figure, target)
        table.add_row("peak RSS of a downloading process", f"{peak:,.0f} MB (RUSAGE_CHILDREN: the largest child)",
                      "< 150 MB")
        for label, connections in (("one stream", 1), ("parallel ranges", 4)):
            r = resume_after_kill(work, url, entry, connections)
            table.add_row(f"kill -9 at {r['at_kill'] / size:.0%} sent, resume ({label})",
                          f"{r['extra'] / MiB:,.1f} MiB sent twice; resuming took {r['seconds']:.2f} s "
                          f"({r['transferred'] / MiB:,.0f} MiB fetched)",
                          "only what was in flight")
        console.print(table)
    finally:
        if server:
            server.kill()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
