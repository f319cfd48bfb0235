"""Downloading one catalog file: resumable, verified, and moved into place only when whole.

``Downloader(partials).fetch(entry, dest)`` is all the installer calls. The rules it keeps:

* **Partial files.** Bytes stream into ``partials/<key>.part`` (key: the file's sha256, or for a
  hub file without one ``url-`` + a hash of its URL; see ``part_key``) in chunks of at most 1 MiB,
  hashed as they are written (on a second thread, a few chunks behind), so memory stays flat
  whatever the size. Beside it the sidecar ``<key>.json`` (replaced atomically) keeps the URL and
  validator (strong ETag, else Last-Modified) of the response the bytes came from and, for a
  parallel transfer, each segment's progress. A full disk raises ``NotEnoughSpace``, part kept.
* **Resuming.** A later call, or another process after a crash, re-hashes the prefix and asks for
  ``Range: bytes=N-`` with ``If-Range: <validator>``. A 200 answer restarts the part from zero; a 416
  means the part is complete (verify it) or stale (restart); a ``Content-Range`` that does not
  start at N is discarded (restart).
* **Retries.** Dropped connections, stalls (no byte for ``stall_timeout`` seconds), 5xx and 429 are
  retried ``retries`` times per URL with a wait of ``backoff * 2**n`` (at most 30 s; a
  ``Retry-After`` of up to 60 s is used instead), keeping the part. An attempt that moved the part
  further than ever before counts as the first failure again, so a flaky link that keeps making
  progress finishes. 404, 403, 410 (and other 4xx) move on to the entry's ``mirrors``, in order.
  When every URL fails: ``DownloadError`` naming the file and each URL's last error. Each wait is
  announced to ``waiting(name, seconds, reason)`` and ends early, with JobCancelled, once
  ``cancelled()`` says so.
* **Outages.** With ``wait_for_network`` (the install job's choice), a file whose every URL failed
  only for want of the network or the server (dropped or refused connections, stalls, 5xx, 429) is
  not given up: the waits go on growing (``backoff * 2**n``, at most ``network_wait_max`` seconds),
  each followed by one try per such URL, until bytes flow again or the user cancels. A 404, a
  bad URL, a checksum mismatch or a full disk still fails at once.
* **Verification.** Size and sha256 are checked, and the part fsynced, before the ``os.replace``
  into ``dest`` (a copy and replace when ``partials`` is on another disk). On a mismatch the part
  is deleted and the file is fetched once more, from zero, from the same URL (a corrupt prefix
  left by an earlier run is the usual cause); a second mismatch moves on to the next URL, and
  ``ChecksumMismatch`` (file, expected and actual digest) is raised when none delivers the
  promised bytes. Nothing is ever at ``dest`` that failed a check. A hub file without a declared
  sha256 is checked against what the hub publishes (``X-Linked-Etag`` / ``X-Linked-Size`` on a
  HEAD of the resolve URL), and ``Fetched`` returns the digest and size for the installer to record.
* **Parallel ranges.** A file of at least ``parallel_min_size`` bytes, from a server that answers
  a HEAD with ``Accept-Ranges: bytes`` and the size, is fetched as ``connections`` segments written
  with ``os.pwrite`` into a preallocated part; the sidecar keeps each segment's progress so a
  resume continues each one. The sha256 is then computed by reading the finished file once: one
  more sequential read (usually from the page cache) in exchange for segments arriving in any
  order.
* **Never twice.** A file already at ``dest`` with the right size and sha256 is returned at once
  (``transferred=0``); one transfer per file across threads and processes (``locks``).

Events go to the ``on_download_*`` hooks (progress at most every 0.2 s); a hook that raises is
logged and ignored, and so is a ``progress`` callback that raises.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter

from zishu import plugins
from zishu.catalog.manifest import FileEntry
from zishu.errors import ChecksumMismatch, DownloadError, JobCancelled, NotEnoughSpace
from zishu.files import adjacent_tmp_file

from .locks import PART, SIDECAR, one_transfer

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # the most bytes held in memory per connection
BACKOFF_MAX = 30.0
NETWORK_WAIT_MAX = 60.0  # the longest wait between tries during an outage
CANCEL_POLL = 0.25  # how often a wait asks whether the user cancelled
RETRY_AFTER_MAX = 60.0
PROGRESS_EVERY = 0.2
SIDECAR_EVERY_S, SIDECAR_EVERY_BYTES = 0.25, 8 * CHUNK  # a parallel part's progress is saved this often

# Failures of the network or the server's connection (as opposed to the local disk).
NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
BAD_URL_ERRORS = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                  requests.exceptions.InvalidSchema, requests.exceptions.TooManyRedirects)


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    transferred: int  # bytes actually received over the network in this call


def part_key(entry: FileEntry) -> str:
    """The name a file's partial download goes by: its sha256, else a hash of its URL."""
    if entry.sha256:
        return entry.sha256
    return "url-" + hashlib.sha256(entry.url.encode("utf-8")).hexdigest()[:32]


class Throttle:
    """A token bucket shared by every transfer of one Downloader: ``take(n)`` sleeps as needed to
    hold the average at ``rate`` bytes/s (bursts of up to a quarter second's worth).
    ``slept`` adds up the waiting asked for, for tests and benches."""

    def __init__(self, rate: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.burst = max(rate / 4, 1.0)
        self.tokens = self.burst
        self.clock, self.sleep = clock, sleep
        self.stamp = clock()
        self.slept = 0.0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= n
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
            self.slept += wait
        if wait:
            self.sleep(wait)


class Downloader:
    """Fetches catalog files into place; one instance may serve many threads at once.

    ``partials`` holds the partial downloads (put it on the same disk as the destinations, e.g.
    under ZISHU_HOME, so the final move is a rename). ``retries`` counts failed attempts per URL
    in a row; ``stall_timeout`` is the longest silence tolerated mid-body; ``bandwidth_limit`` is in
    bytes/s for all transfers of this instance together; ``connections`` ranges are used for files
    of at least ``parallel_min_size`` bytes; ``progress(name, done, total)`` is called like the
    ``on_download_progress`` hook, which goes to ``hook`` (default: the plugin manager's);
    ``cancelled()`` is asked as bytes arrive and during every wait: once it returns True, ``fetch``
    raises JobCancelled and keeps the partial file for the next try. ``wait_for_network`` keeps a
    file whose URLs are unreachable waiting (see Outages above), announcing each wait to
    ``waiting(name, seconds, reason)``. ``clock`` and ``sleep`` time the waits (tests pass a
    simulated pair).
    """

    def __init__(self, partials: Path, *, session: requests.Session | None = None, hook=None,
                 retries: int = 5, backoff: float = 0.5, stall_timeout: float = 30.0,
                 connect_timeout: float = 10.0, bandwidth_limit: int | None = None,
                 connections: int = 4, parallel_min_size: int = 64 * 1024 * 1024,
                 progress: Callable[[str, int, int | None], None] | None = None,
                 cancelled: Callable[[], bool] | None = None, wait_for_network: bool = False,
                 network_wait_max: float = NETWORK_WAIT_MAX,
                 waiting: Callable[[str, float, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.partials = Path(partials)
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_maxsize=max(10, connections))
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self.hook = hook if hook is not None else plugins.pm.hook
        self.retries, self.backoff = retries, backoff
        self.timeout = (connect_timeout, stall_timeout)
        self.throttle = Throttle(bandwidth_limit) if bandwidth_limit else None
        self.chunk = CHUNK if not bandwidth_limit else max(4096, min(CHUNK, bandwidth_limit // 8))
        self.connections, self.parallel_min_size = connections, parallel_min_size
        self.progress = progress
        self.cancelled = cancelled
        self.wait_for_network, self.network_wait_max = wait_for_network, network_wait_max
        self.waiting = waiting
        self.clock, self.sleep = clock, sleep

    def fetch(self, entry: FileEntry, dest: Path) -> Fetched:
        """Make ``dest`` hold ``entry``'s verified bytes; raises DownloadError or ChecksumMismatch."""
        dest = Path(dest)
        key = part_key(entry)
        while True:
            result, led = one_transfer(self.partials, key, lambda: _Transfer(self, entry, dest, key).run())
            if led:
                return result
            if os.path.abspath(result.path) == os.path.abspath(dest):
                return replace(result, path=dest, transferred=0)
            # The same bytes were wanted somewhere else: now it is this call's turn.

    def _emit(self, hook_name: str, **kwargs) -> None:
        try:
            getattr(self.hook, hook_name)(**kwargs)
        except Exception:
            log.warning("the %s hook raised; ignored", hook_name, exc_info=True)


# The failures below are DownloadErrors, so the on_download_error hook only ever sees the public tree.


class _Retry(DownloadError):
    """This attempt failed; another one may succeed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Restart(_Retry):
    """The server does not serve the ranges a parallel transfer needs: go on in one stream."""


class _GiveUp(DownloadError):
    """This URL will not serve the file (404, 403, 410, another 4xx, a bad URL)."""


class _Mismatch(ChecksumMismatch):
    """The bytes are not the promised ones."""

    def __init__(self, message: str, actual: str | None) -> None:
        super().__init__(message)
        self.actual = actual


class _Failed(DownloadError):
    """Every attempt at one URL failed; ``outage`` when only the network or the server was to
    blame (another try later may succeed), with the wait the server asked for, if any."""

    def __init__(self, message: str, mismatch: _Mismatch | None = None, *, outage: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.mismatch = mismatch
        self.outage, self.retry_after = outage, retry_after


@dataclass
class _Remote:
    """What a HEAD request told about a URL."""

    sha256: str | None = None
    size: int | None = None
    ranges: bool = False
    validator: str | None = None


class _Part:
    """The ``.part`` file of one transfer and its sidecar: what is on disk, how far it is hashed.

    ``done`` is the bytes on disk (in a parallel part, the sum of the segments' progress);
    ``hasher`` covers exactly the first ``done`` bytes, or is None for a parallel part.
    """

    def __init__(self, partials: Path, key: str) -> None:
        self.path = partials / f"{key}{PART}"
        self.sidecar = partials / f"{key}{SIDECAR}"
        self.meta: dict = {}
        self.done = 0
        self.hasher: hashlib._Hash | None = hashlib.sha256()
        self._saved = (0.0, 0)  # when, and at how many bytes done, the segments were last saved

    @property
    def segments(self) -> list[list[int]] | None:
        return self.meta.get("segments")

    def load(self) -> None:
        try:
            self.meta = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.meta = {}
        if not isinstance(self.meta, dict):
            self.meta = {}
        if not self.path.exists():
            self.reset()
        elif self.segments:
            try:
                done = sum(pos - start for start, _, pos in self.segments)
            except (TypeError, ValueError):
                done = None
            if done is None or self.path.stat().st_size != self.meta.get("size"):
                self.reset()
            else:
                self.done, self.hasher = done, None
        else:
            self.rehash()

    def sync(self) -> None:
        """Before an attempt: make the file and ``done`` agree (an attempt may die mid-write)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            if self.done or self.meta:
                self.reset()
            return
        if self.segments:
            return
        if size > self.done:
            os.truncate(self.path, self.done)
        elif size < self.done:
            self.rehash()

    def rehash(self) -> None:
        self.hasher, self.done = hashlib.sha256(), 0
        with open(self.path, "rb") as f:
            while block := f.read(CHUNK):
                self.hasher.update(block)
                self.done += len(block)

    def reset(self) -> None:
        """Forget everything: the next attempt starts from byte zero."""
        self.path.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)
        self.meta, self.done, self.hasher = {}, 0, hashlib.sha256()

    def begin(self, url: str, validator: str | None, size: int | None) -> None:
        """Record where a single-stream part's bytes come from (the If-Range of a resume)."""
        meta = {"url": url, "validator": validator, "size": size}
        if meta != self.meta:
            self.meta = meta
            self.save()

    def begin_segments(self, url: str, validator: str | None, size: int, count: int) -> None:
        """Start a parallel part: the sidecar first, then the preallocated file."""
        self.reset()
        step = -(-size // count)
        segments = [[start, min(start + step, size), start] for start in range(0, size, step)] or [[0, 0, 0]]
        self.meta = {"url": url, "validator": validator, "size": size, "segments": segments}
        self.save()
        with open(self.path, "wb") as f:
            f.truncate(size)
            if hasattr(os, "posix_fallocate") and size:
                try:
                    os.posix_fallocate(f.fileno(), 0, size)
                except OSError as e:
                    if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
        self.hasher = None

    def save_segments(self, force: bool = False) -> None:
        """Save the segments' progress every SIDECAR_EVERY_S seconds or SIDECAR_EVERY_BYTES bytes
        (or now, when forced), with the transfer's lock held; never ahead of what was written."""
        now = time.monotonic()
        if force or now - self._saved[0] >= SIDECAR_EVERY_S or self.done - self._saved[1] >= SIDECAR_EVERY_BYTES:
            self._saved = (now, self.done)
            self.save()

    def save(self) -> None:
        """Replace the sidecar atomically. Not fsynced (a parallel part saves it several times a
        second): after a power cut it may claim bytes that never reached the disk, which the
        sha256 check catches. The temp file's name starts with the key, like everything here."""
        tmp = self.sidecar.with_name(f"{self.sidecar.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(self.meta), encoding="utf-8")
        os.replace(tmp, self.sidecar)


class _HashBehind:
    """Feed a hasher on a second thread, a few chunks behind the writer, so hashing overlaps
    receiving and writing (all three release the GIL). Leaving the ``with`` block waits until
    every chunk given is hashed, so the hasher again covers exactly the bytes written."""

    def __init__(self, hasher) -> None:
        self.hasher = hasher
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)  # at most 8 chunks held
        self.thread = threading.Thread(target=self._run, name="zishu-sha256", daemon=True)

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            self.hasher.update(data)

    def update(self, data: bytes) -> None:
        self.queue.put(data)

    def __enter__(self) -> _HashBehind:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.queue.put(None)
        self.thread.join()


class _Transfer:
    """One call of ``fetch`` that holds the file's locks: getting ``entry`` to ``dest``."""

    def __init__(self, dl: Downloader, entry: FileEntry, dest: Path, key: str) -> None:
        self.dl, self.entry, self.dest = dl, entry, dest
        self.name = entry.name
        self.sha256, self.size = entry.sha256, entry.size  # what the bytes must be (a hub may tell)
        self.part = _Part(dl.partials, key)
        self.transferred = 0
        self.one_stream = False  # set when a server refused the ranges of a parallel transfer
        self._lock = threading.Lock()
        self._last_progress = float("-inf")

    def run(self) -> Fetched:
        try:
            return self._run()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            raise NotEnoughSpace(f"no space left on the disk for {self.name} ({self.part.path.parent}); "
                                 "the partial file is kept and resumes once there is room") from e

    def _run(self) -> Fetched:
        if self.sha256 and self._dest_is_complete():
            return Fetched(self.dest, self.sha256, self.dest.stat().st_size, 0)
        self.part.load()
        urls = list(dict.fromkeys([self.entry.url, *self.entry.mirrors]))
        errors: dict[str, str] = {}
        mismatch: _Mismatch | None = None
        live, outage = urls, 0  # the URLs still worth a try; rounds in a row that moved no byte
        while True:
            before, unreachable, retry_after = self.part.done, [], None
            for i, url in enumerate(live):
                remote = self._probe(url)
                if remote and (remote.sha256 and not self.sha256):
                    self.sha256 = remote.sha256
                    self.size = remote.size if self.size is None else self.size
                    if self._dest_is_complete():
                        return Fetched(self.dest, self.sha256, self.dest.stat().st_size, 0)
                if remote and self.size is None:
                    self.size = remote.size
                try:
                    # The first round tries each URL ``retries`` times; during an outage, once per wait.
                    return self._from(url, remote, self.dl.retries if outage == 0 else 0)
                except _Failed as failed:
                    errors[url] = str(failed)
                    mismatch = failed.mismatch or mismatch
                    if failed.outage:
                        unreachable.append(url)
                        retry_after = failed.retry_after if retry_after is None else retry_after
                    self.dl._emit("on_download_error", url=url, name=self.name, error=failed,
                                  will_retry=i + 1 < len(live) or self._waits_for(unreachable, mismatch))
            if not self._waits_for(unreachable, mismatch):
                break
            live = unreachable
            if outage and self.part.done > before:  # bytes came during the outage: patient again
                outage, delay = 0, self.dl.backoff
            else:  # the waits go on from where the first round's retries stopped
                outage += 1
                delay = min(self.dl.backoff * 2 ** (self.dl.retries + outage - 1), self.dl.network_wait_max)
            if retry_after is not None and retry_after <= RETRY_AFTER_MAX:
                delay = max(retry_after, self.dl.backoff)  # never a busy loop on "Retry-After: 0"
            reason = errors[unreachable[-1]].split(" (gave up after", 1)[0]
            log.info("%s: no URL answers (%s); waiting %.2fs for the network", self.name, reason, delay)
            self._wait(delay, reason)
        listing = "\n".join(f"  {url}: {message}" for url, message in errors.items())
        if mismatch:
            raise ChecksumMismatch(f"{self.name}: {mismatch} (fetched twice, from zero the second time)\n{listing}")
        raise DownloadError(f"could not download {self.name} from any of its {len(urls)} URL(s):\n{listing}")

    # -- one URL ---------------------------------------------------------------------------

    def _waits_for(self, unreachable: list[str], mismatch: _Mismatch | None) -> bool:
        """Whether an outage is waited out: asked for, some URL unreachable, and no wrong bytes."""
        return bool(self.dl.wait_for_network and unreachable and mismatch is None)

    def _wait(self, seconds: float, reason: str) -> None:
        """Sleep ``seconds`` (announced to ``waiting``), asking every CANCEL_POLL s whether the
        user cancelled; raises JobCancelled, the part kept, once they have."""
        if self.dl.waiting is not None:
            try:
                self.dl.waiting(self.name, seconds, reason)
            except Exception:
                log.warning("the waiting callback raised; ignored", exc_info=True)
        end = self.dl.clock() + seconds
        while True:
            if self.dl.cancelled is not None and self.dl.cancelled():
                raise JobCancelled(f"{self.name}: cancelled while waiting for the network; "
                                   f"the {self.part.done:,} bytes received are kept")
            left = end - self.dl.clock()
            if left <= 0:
                return
            self.dl.sleep(min(left, CANCEL_POLL))

    def _from(self, url: str, remote: _Remote | None, retries: int) -> Fetched:
        """Attempts at one URL until the part is complete and verified, or it is time to move on
        (after ``retries`` failed attempts in a row, or at once for an error no retry fixes)."""
        failures = mismatches = 0
        furthest = self.part.done
        while True:
            self.part.sync()
            try:
                if self._parallel(remote):
                    self._parallel_attempt(url, remote)
                else:
                    self._stream_attempt(url)
                return self._finish()
            except _Mismatch as e:
                self.part.reset()
                mismatches += 1
                if mismatches > 1:
                    raise _Failed(str(e), mismatch=e) from None
                self.dl._emit("on_download_error", url=url, name=self.name, error=e, will_retry=True)
            except _GiveUp as e:
                raise _Failed(str(e)) from None
            except (_Retry, *NETWORK_ERRORS) as e:
                if isinstance(e, BAD_URL_ERRORS):
                    raise _Failed(_describe(e, self.dl.timeout[1])) from None
                failures = 1 if self.part.done > furthest else failures + 1
                furthest = max(furthest, self.part.done)
                after = getattr(e, "retry_after", None)
                if failures > retries:
                    raise _Failed(f"{_describe(e, self.dl.timeout[1])} (gave up after {failures} tries)",
                                  outage=True, retry_after=after) from None
                self.dl._emit("on_download_error", url=url, name=self.name, error=e, will_retry=True)
                delay = min(self.dl.backoff * 2 ** max(failures - 1, 0), BACKOFF_MAX)
                if after is not None and after <= RETRY_AFTER_MAX:
                    delay = after
                log.info("%s from %s: %s; retrying in %.2fs", self.name, url, e, delay)
                self._wait(delay, _describe(e, self.dl.timeout[1]))

    def _probe(self, url: str) -> _Remote | None:
        """HEAD the URL when its answer matters: no declared sha256 (a hub file), or a file that
        may be big enough for parallel ranges. None when not asked or when it fails."""
        big = self.size is None or self.size >= self.dl.parallel_min_size
        if self.sha256 and not (self.dl.connections > 1 and big):
            return None
        try:
            r = self.dl.session.head(url, allow_redirects=True, timeout=self.dl.timeout,
                                     headers={"Accept-Encoding": "identity"})
        except NETWORK_ERRORS:
            return None
        remote = _Remote()
        for hop in (*r.history, r):
            linked = _hex64(hop.headers.get("X-Linked-Etag"))
            if linked is None and "X-Repo-Commit" in hop.headers:  # the hub's own answer for an LFS file
                linked = _hex64(hop.headers.get("ETag"))
            if linked and remote.sha256 is None:
                remote.sha256 = linked
                remote.size = _int(hop.headers.get("X-Linked-Size"))
        if r.status_code == 200:
            if remote.size is None:
                remote.size = _int(r.headers.get("Content-Length"))
            remote.ranges = r.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
            remote.validator = _validator(r)
        r.close()
        return remote

    def _parallel(self, remote: _Remote | None) -> bool:
        if self.one_stream or self.dl.connections < 2:
            return False
        if self.part.segments:
            return self.part.meta.get("size") == self.size
        return bool(remote and remote.ranges and remote.size is not None and remote.size == self.size
                    and remote.size >= self.dl.parallel_min_size)

    # -- one stream ------------------------------------------------------------------------

    def _stream_attempt(self, url: str) -> None:
        """One GET appended to the part; returns when the body is complete."""
        part = self.part
        if part.segments:  # a parallel part is no prefix: this stream starts over
            part.reset()
        headers = {"Accept-Encoding": "identity"}
        asked = part.done
        if asked:
            headers["Range"] = f"bytes={asked}-"
            if part.meta.get("url") == url and part.meta.get("validator"):
                headers["If-Range"] = part.meta["validator"]
        if self.size is not None and asked > self.size:
            part.reset()
            raise _Retry(f"the partial file is longer than {self.size} bytes: restarting from zero")
        if asked and asked == self.size:
            return  # complete already (a run stopped before moving it into place): verify it
        self.dl._emit("on_download_start", url=url, name=self.name, sha256=self.sha256, size=self.size,
                      resumed_from=asked)
        with self.dl.session.get(url, headers=headers, stream=True, timeout=self.dl.timeout) as r:
            _check_status(r)
            if r.status_code == 416:
                total = _content_range(r.headers.get("Content-Range"))[2]
                if total == asked or (total is None and self.size == asked):
                    return
                part.reset()
                raise _Retry(f"HTTP 416 to bytes={asked}- (the file has {total} bytes): restarting from zero")
            if r.status_code == 206:
                start, _, total = _content_range(r.headers.get("Content-Range"))
                if start != asked:
                    part.reset()
                    raise _Retry(f"asked for bytes={asked}-, got Content-Range "
                                 f"{r.headers.get('Content-Range')!r}: restarting from zero")
            else:
                total = _int(r.headers.get("Content-Length"))
                if asked:
                    log.info("%s: %s ignored the Range request; restarting from zero", self.name, url)
                    part.reset()
            part.begin(url, _validator(r), total)
            self._receive(r)

    def _receive(self, r: requests.Response) -> None:
        part = self.part
        with open(part.path, "ab") as f, _HashBehind(part.hasher) as hashing:
            while data := r.raw.read1(self.dl.chunk, decode_content=False):
                self._received(len(data))
                if self.size is not None and part.done + len(data) > self.size:
                    raise _Mismatch(f"expected {self.size} bytes, the server sent more", None)
                f.write(data)
                hashing.update(data)
                part.done += len(data)
                self._progress()

    # -- parallel ranges -------------------------------------------------------------------

    def _parallel_attempt(self, url: str, remote: _Remote | None) -> None:
        part = self.part
        if not part.segments:
            assert self.size is not None  # _parallel() starts ranges only for a file whose size is known
            part.begin_segments(url, remote.validator if remote else None, self.size, self.dl.connections)
        segments = part.segments
        assert segments is not None  # a parallel part has them, from its sidecar or from begin_segments()
        validator = part.meta.get("validator") if part.meta.get("url") == url else None
        pending = [seg for seg in segments if seg[2] < seg[1]]
        self.dl._emit("on_download_start", url=url, name=self.name, sha256=self.sha256, size=self.size,
                      resumed_from=part.done)
        if pending:
            with ThreadPoolExecutor(len(pending), thread_name_prefix="zishu-segment") as pool:
                futures = [pool.submit(self._segment, url, seg, validator) for seg in pending]
            errors = [e for f in futures if (e := f.exception()) is not None]
            with self._lock:
                part.save_segments(force=True)
            if errors:
                restart = next((e for e in errors if isinstance(e, _Restart)), None)
                if restart:
                    part.reset()
                    self.one_stream = True
                    raise restart
                raise next((e for e in errors if isinstance(e, _GiveUp)), errors[0])

    def _segment(self, url: str, seg: list[int], validator: str | None) -> None:
        """Fetch the rest of one segment ``[start, end, pos]`` (end exclusive) into its place."""
        _, end, pos = seg
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={pos}-{end - 1}"}
        if validator:
            headers["If-Range"] = validator
        with self.dl.session.get(url, headers=headers, stream=True, timeout=self.dl.timeout) as r:
            _check_status(r)
            if r.status_code != 206:
                raise _Restart(f"answered HTTP {r.status_code} to a range request")
            got = _content_range(r.headers.get("Content-Range"))
            if got[:2] != (pos, end - 1):
                raise _Restart(f"asked for bytes={pos}-{end - 1}, got Content-Range {r.headers.get('Content-Range')!r}")
            fd = os.open(self.part.path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
            try:
                while pos < end:
                    data = r.raw.read1(min(self.dl.chunk, end - pos), decode_content=False)
                    if not data:
                        raise _Retry(f"connection closed {end - pos} bytes before the segment's end")
                    self._received(len(data))
                    _write_at(fd, data, pos)
                    pos += len(data)
                    with self._lock:
                        seg[2] = pos
                        self.part.done += len(data)
                        self.part.save_segments()
                    self._progress()
            finally:
                os.close(fd)

    # -- the end ---------------------------------------------------------------------------

    def _finish(self) -> Fetched:
        """Verify the complete part and move it to ``dest``."""
        part = self.part
        with open(part.path, "r+b") as f, ThreadPoolExecutor(1, thread_name_prefix="zishu-fsync") as pool:
            flushed = pool.submit(os.fsync, f.fileno())  # the disk flush overlaps the read-back below
            if part.hasher is None:
                part.rehash()  # a parallel part: its bytes arrived out of order
            flushed.result()
        assert part.hasher is not None  # kept by a stream, or made by rehash() above
        actual, size = part.hasher.hexdigest(), part.done
        if self.size is not None and size != self.size:
            promised = f" (sha256 {self.sha256})" if self.sha256 else ""
            raise _Mismatch(f"expected {self.size} bytes{promised}, got {size} (sha256 {actual})", actual)
        if self.sha256 and actual != self.sha256:
            raise _Mismatch(f"expected sha256 {self.sha256}, got {actual}", actual)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(part.path, self.dest)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            with open(part.path, "rb") as src, adjacent_tmp_file(self.dest) as out:
                shutil.copyfileobj(src, out, CHUNK)
            part.path.unlink()
        part.sidecar.unlink(missing_ok=True)
        self.dl._emit("on_download_complete", name=self.name, path=str(self.dest), sha256=actual, size=size)
        return Fetched(self.dest, actual, size, self.transferred)

    def _dest_is_complete(self) -> bool:
        try:
            if not self.dest.is_file() or (self.size is not None and self.dest.stat().st_size != self.size):
                return False
            digest = hashlib.sha256()
            with open(self.dest, "rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
        except OSError:
            return False
        return digest.hexdigest() == self.sha256

    def _received(self, n: int) -> None:
        if self.dl.cancelled is not None and self.dl.cancelled():
            raise JobCancelled(f"{self.name}: cancelled; the {self.part.done:,} bytes received are kept")
        if self.dl.throttle:
            self.dl.throttle.take(n)
        with self._lock:
            self.transferred += n

    def _progress(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_progress < PROGRESS_EVERY:
                return
            self._last_progress = now
            done = self.part.done
        if self.dl.progress:
            try:
                self.dl.progress(self.name, done, self.size)
            except Exception:
                log.warning("the progress callback raised; ignored", exc_info=True)
        self.dl._emit("on_download_progress", name=self.name, done=done, total=self.size)


# -- small helpers ---------------------------------------------------------------------------


def _check_status(r: requests.Response) -> None:
    """Raise for answers that carry no bytes of the file; return for 2xx and 416.
    408, 429 and 5xx are worth another try; other 4xx (404, 403, 410, ...) send us to a mirror."""
    status = r.status_code
    if 200 <= status < 300 or status == 416:
        return
    reason = f"HTTP {status} {r.reason or ''}".rstrip()
    if status == 429 or status >= 500 or status == 408:
        raise _Retry(reason, _retry_after(r.headers.get("Retry-After")))
    raise _GiveUp(reason)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        if hasattr(os, "pwrite"):
            n = os.pwrite(fd, view, offset)
        else:  # Windows: each segment has its own descriptor, so seek + write is safe
            os.lseek(fd, offset, os.SEEK_SET)
            n = os.write(fd, view)
        view, offset = view[n:], offset + n


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """``bytes a-b/total`` or ``bytes */total`` as (a, b, total); None for what is missing."""
    try:
        unit, _, spec = (value or "").strip().partition(" ")
        span, _, total = spec.partition("/")
        if unit.lower() != "bytes":
            return None, None, None
        a, _, b = span.partition("-")
        return _int(a), _int(b), _int(total)
    except ValueError:
        return None, None, None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None and value.strip().isdigit() else None
    except ValueError:
        return None


def _hex64(value: str | None) -> str | None:
    value = (value or "").strip().removeprefix("W/").strip('"').lower()
    return value if len(value) == 64 and all(c in "0123456789abcdef" for c in value) else None


def _validator(r: requests.Response) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range may carry."""
    etag = r.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return r.headers.get("Last-Modified")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(error: BaseException, stall_timeout: float) -> str:
    """One line for a failed attempt, for the DownloadError message."""
    if isinstance(error, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
        return f"stalled (no byte for {stall_timeout:g} s)"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "could not connect (timed out)"
    if isinstance(error, requests.exceptions.ConnectionError) and not isinstance(
            error, requests.exceptions.ChunkedEncodingError):
        inner = error.args[0] if error.args else error
        if isinstance(inner, urllib3.exceptions.ProtocolError):
            return f"connection dropped ({inner})"
        reason = str(getattr(inner, "reason", inner))
        return f"could not connect ({reason.rsplit(': ', 1)[-1]})"
    if isinstance(error, (urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError)):
        return "connection dropped mid-body"
    if isinstance(error, (_Retry, _GiveUp)):
        return str(error)
    return f"{type(error).__name__}: {error}"
