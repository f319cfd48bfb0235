"""Every error Zishu raises on purpose, in one tree, each with a stable ``code``.

Each class carries its ``code``, the CLI's ``exit_status`` and the local API's ``http_status``;
the CLI exits with ``error.exit_status`` and the API answers ``{"error": {"code", "message"}}``
with ``error.http_status``. An error that installing one catalog resource would cure carries its id
in ``install`` (``UsageError(..., install="qwen/x")``), and the API adds ``"install": id`` to the
error, so a page offers an Install button without reading the message. ``zishu --help`` lists the
exit statuses from these classes (``exit_status_help``), and a test checks this drawing and the
README's table against them.

    ZishuError                      code ZISHU_ERROR           exit 1   HTTP 500
    │                               (unexpected: a bug or a failure nothing more specific names)
    ├── UsageError                  code USAGE                 exit 2   HTTP 400
    ├── ResourceNotAvailable        code MODEL_NOT_AVAILABLE   exit 3   HTTP 404
    │                               (not installed: ``path()`` never downloads implicitly)
    ├── ManifestError               code MANIFEST_INVALID      exit 4   HTTP 422
    │                               (carries every Problem found, each naming file and field)
    ├── CardError                   code CARD_INVALID          exit 4   HTTP 422
    ├── PackageError                code PACKAGE_INVALID       exit 4   HTTP 422
    │                               (a .zpkg refused: unsafe path, zip bomb, manifest ≠ files)
    ├── CatalogBuildError           code CATALOG_BUILD_FAILED  exit 5   HTTP 500
    ├── RemoteError                 code REMOTE_FAILED         exit 6   HTTP 502
    │   └── DownloadError           code DOWNLOAD_FAILED       exit 6   HTTP 502
    │       └── ChecksumMismatch    code CHECKSUM_MISMATCH     exit 6   HTTP 502
    ├── InstallPlanError            code INSTALL_PLAN_FAILED   exit 7   HTTP 409
    │   │                           (unknown id, no version in range, conflict, missing dependency)
    │   └── UnknownResource         code UNKNOWN_RESOURCE      exit 7   HTTP 404
    │                               (no such id in the catalog; ``zishu search`` finds the right one)
    ├── NotEnoughSpace              code NOT_ENOUGH_SPACE      exit 8   HTTP 507
    ├── JobCancelled                code CANCELLED             exit 9   HTTP 409
    │                               (the user cancelled the job; partial downloads are kept)
    ├── NotEnoughMemory             code NOT_ENOUGH_MEMORY     exit 10  HTTP 507
    │                               (a model would not fit the RAM/VRAM budget: the numbers say why)
    ├── EngineError                 code ENGINE_FAILED         exit 11  HTTP 503
    │                               (no engine for the model, or the engine's plugin failed on it)
    ├── NotFound                    code NOT_FOUND             exit 12  HTTP 404
    │                               (no such job, session, memory, character or plugin)
    ├── DatabaseTooNew              code DATABASE_TOO_NEW      exit 13  HTTP 500
    │                               (zishu.db was written by a newer Zishu; upgrade Zishu)
    ├── DatabaseCorrupt             code DATABASE_CORRUPT      exit 14  HTTP 500
    │                               (zishu.db is truncated or not SQLite: restore its backup)
    └── Busy                        code BUSY                  exit 15  HTTP 503
                                    (the app is at a limit: open event streams, queued audio)

Why these HTTP statuses: 4xx when the request could succeed if the caller changed it (400 its
form, 404 the thing named, 409 the state it conflicts with, 422 the file it sent); 5xx when the
request was fine and this machine could not do it (500 our fault, 502 a remote host's, 503 an
engine that is missing or failed or the app at a capacity limit, 507 not enough disk or memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input: which file, which field, what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class ZishuError(Exception):
    """Something went wrong that no more specific class names: a bug, or an unforeseen failure."""

    code: ClassVar[str] = "ZISHU_ERROR"
    exit_status: ClassVar[int] = 1
    http_status: ClassVar[int] = 500  # the request was fine; the fault is ours
    summary: ClassVar[str] = "unexpected error"
    install: str | None = None  # the catalog id whose install makes the same request work, when one does

    def __init__(self, *args: object, install: str | None = None) -> None:
        super().__init__(*args)
        if install is not None:
            self.install = install


class UsageError(ZishuError):
    """The command or request itself is wrong: an unknown option, a malformed id or body."""

    code = "USAGE"
    exit_status = 2
    http_status = 400
    summary = "bad usage (unknown option, missing argument, malformed id or body)"


class ResourceNotAvailable(ZishuError):
    """The resource (or that version of it) is not installed; install it first."""

    code = "MODEL_NOT_AVAILABLE"
    exit_status = 3
    http_status = 404  # nothing by that id is here: installing it makes the same request work
    summary = "the resource is not installed"

    def __init__(self, message: str = "", *, install: str | Sequence[str] | None = None):
        # several missing ids (a style's LoRAs): the message names them all, and the Install button the
        # first; installing it gives the next error, naming the next
        first = install if isinstance(install, str) or install is None else next(iter(install), None)
        super().__init__(message, install=first)


class ManifestError(ZishuError):
    """A manifest (or a set of them) breaks the catalog's rules."""

    code = "MANIFEST_INVALID"
    exit_status = 4
    http_status = 422  # the request was well formed; the manifest it carries breaks the rules
    summary = "invalid manifest"

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CardError(ZishuError):
    """A SillyTavern character card could not be read or written."""

    code = "CARD_INVALID"
    exit_status = 4
    http_status = 422  # the upload arrived whole; the file in it is not a card Zishu can read
    summary = "invalid character card"


class PackageError(ZishuError):
    """A character package (.zpkg) is unsafe or does not match its manifest: nothing was installed."""

    code = "PACKAGE_INVALID"
    exit_status = 4
    http_status = 422  # the file arrived whole; it is not a package Zishu will install
    summary = "invalid or unsafe package"


class CatalogBuildError(ZishuError):
    """Building the catalog site or index failed (mkdocs, the site configuration, a snapshot)."""

    code = "CATALOG_BUILD_FAILED"
    exit_status = 5
    http_status = 500  # the build is this machine's own work: a failure in it is a server error
    summary = "the catalog build failed"


class RemoteError(ZishuError):
    """A remote service (GitHub API, a file host) answered with something unusable."""

    code = "REMOTE_FAILED"
    exit_status = 6
    http_status = 502  # Bad Gateway: the service we asked on the caller's behalf failed
    summary = "a remote service failed (GitHub API, a file host)"


class DownloadError(RemoteError):
    """A file could not be downloaded from any of its URLs."""

    code = "DOWNLOAD_FAILED"
    summary = "a download failed"


class ChecksumMismatch(DownloadError):
    """The downloaded bytes are not the ones the manifest promises (nothing was installed)."""

    code = "CHECKSUM_MISMATCH"
    summary = "a download's sha256 or size is not the manifest's"


class InstallPlanError(ZishuError):
    """No install plan fits: no version in range, a conflict, a missing dependency."""

    code = "INSTALL_PLAN_FAILED"
    exit_status = 7
    http_status = 409  # Conflict: the request clashes with the catalog's or the library's state
    summary = "the install plan failed (no version in range, conflict, missing dependency)"


class UnknownResource(InstallPlanError):
    """The catalog has no resource with this id."""

    code = "UNKNOWN_RESOURCE"
    http_status = 404
    summary = "the catalog has no resource with this id"

    def __init__(self, id: str, catalog: str | None = None):
        self.id = id
        where = f" ({catalog})" if catalog else ""
        words = id.rsplit("/", 1)[-1].replace("-", " ").strip() or id
        super().__init__(
            f"the catalog{where} has no resource {id!r}; find the right id with: zishu search {words}"
        )


class NotEnoughSpace(ZishuError):
    """The disk has too little free space for what would be downloaded (nothing was started)."""

    code = "NOT_ENOUGH_SPACE"
    exit_status = 8
    http_status = 507  # Insufficient Storage
    summary = "not enough free disk space"


class JobCancelled(ZishuError):
    """The user cancelled the job while it ran; what it downloaded so far is kept for a retry."""

    code = "CANCELLED"
    exit_status = 9
    http_status = 409  # Conflict with the job's state: it was cancelled
    summary = "cancelled"


class NotEnoughMemory(ZishuError):
    """A model would not fit the RAM/VRAM budget or the free memory: the numbers say why."""

    code = "NOT_ENOUGH_MEMORY"
    exit_status = 10
    http_status = 507  # Insufficient Storage: the server cannot hold what the request needs
    summary = "the model does not fit the memory budget"


class EngineError(ZishuError):
    """No engine loads the model, or the engine's plugin failed on it.

    HTTP 503 Service Unavailable: the request is fine (a model and a character that exist), but
    the service that would answer it, an engine plugin, is missing, disabled or broken on this
    machine. Installing or enabling the engine, or choosing another model, makes the same request
    work; it is neither the caller's mistake (4xx) nor an unexplained fault of ours (500).
    """

    code = "ENGINE_FAILED"
    exit_status = 11
    http_status = 503
    summary = "an engine failed (or none loads that model)"


class NotFound(ZishuError):
    """The local API or a command has no such job, session, memory, character or plugin."""

    code = "NOT_FOUND"
    exit_status = 12
    http_status = 404
    summary = "no such job, session, memory, character or plugin"


class DatabaseTooNew(ZishuError):
    """``zishu.db`` was written by a newer Zishu; this one changes nothing and refuses to start."""

    code = "DATABASE_TOO_NEW"
    exit_status = 13
    http_status = 500  # the server cannot use its own data; no change to the request helps
    summary = "the database was written by a newer Zishu (upgrade Zishu)"


class DatabaseCorrupt(ZishuError):
    """``zishu.db`` cannot be read (truncated, overwritten, not SQLite); the message names the file
    and the way out: the backup beside it, or moving it aside to start afresh."""

    code = "DATABASE_CORRUPT"
    exit_status = 14
    http_status = 500  # the server cannot use its own data; no change to the request helps
    summary = "the database is damaged (restore the backup beside it, or move it aside)"


class Busy(ZishuError):
    """The app is at one of its capacity limits: too many open event streams, or more microphone
    audio queued than a session keeps. HTTP 503: the request is fine and works again once the
    load is gone (a window closed, the session caught up)."""

    code = "BUSY"
    exit_status = 15
    http_status = 503
    summary = "the app is at a capacity limit (open event streams, queued audio); retry later"


def exit_status(error: ZishuError) -> int:
    """The CLI's exit status for ``error`` (its class's ``exit_status``)."""
    return error.exit_status


def every_error() -> list[type[ZishuError]]:
    """The classes of this tree, parents before children, in the order they are defined here."""
    found: list[type[ZishuError]] = []

    def walk(cls: type[ZishuError]) -> None:
        if cls.__module__ == __name__:
            found.append(cls)
            for sub in cls.__subclasses__():
                walk(sub)

    walk(ZishuError)
    return found


def exit_status_help() -> str:
    """The exit-status table that ``zishu --help`` shows, made from the classes."""
    rows = [("0", "", "success")] + [
        (str(cls.exit_status), cls.code, cls.summary)
        for cls in sorted(every_error(), key=lambda cls: cls.exit_status)
    ]
    width = max(len(code) for _, code, _ in rows)
    lines = [f"  {status:<3}{code:<{width}}  {summary}".rstrip() for status, code, summary in rows]
    return "\b\nExit status:\n" + "\n".join(lines) + "\n"


def field_problem(error: Any) -> UsageError:
    """The first problem of a pydantic ``ValidationError`` as a UsageError naming its field
    ("limit: Input should be less than or equal to 200"), for request models' ``parse``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "request"
    cause = (first.get("ctx") or {}).get("error")
    message = "required" if first["type"] == "missing" else str(cause) if cause is not None else first["msg"]
    return UsageError(f"{where}: {message}")
