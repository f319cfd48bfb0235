"""Every error Zishu raises on purpose, in one tree, each with a stable ``code``.

The CLI maps ``code`` to an exit status (``EXIT_STATUS``); the local API maps it to a JSON body.

    ZishuError                      code ZISHU_ERROR          exit 1
    ├── UsageError                  code USAGE                exit 2
    ├── ResourceNotAvailable        code MODEL_NOT_AVAILABLE  exit 3
    │                               (not installed: ``path()`` never downloads implicitly)
    ├── ManifestError               code MANIFEST_INVALID     exit 4
    │                               (carries every Problem found, each naming file and field)
    ├── CardError                   code CARD_INVALID         exit 4
    ├── CatalogBuildError           code CATALOG_BUILD_FAILED exit 5
    ├── RemoteError                 code REMOTE_FAILED        exit 6
    │   └── DownloadError           code DOWNLOAD_FAILED      exit 6
    │       └── ChecksumMismatch    code CHECKSUM_MISMATCH    exit 6
    ├── InstallPlanError            code INSTALL_PLAN_FAILED  exit 7
    │   │                           (unknown id, no version in range, conflict, missing dependency)
    │   └── UnknownResource         code UNKNOWN_RESOURCE     exit 7
    │                               (no such id in the catalog; ``zishu search`` finds the right one)
    ├── NotEnoughSpace              code NOT_ENOUGH_SPACE     exit 8
    ├── JobCancelled                code CANCELLED            exit 9
    │                               (the user cancelled the job; partial downloads are kept)
    ├── NotEnoughMemory             code NOT_ENOUGH_MEMORY    exit 10
    │                               (a model would not fit the RAM/VRAM budget: the numbers say why)
    ├── EngineError                 code ENGINE_FAILED        exit 11
    │                               (no engine for the model, or the engine's plugin failed on it)
    └── NotFound                    code NOT_FOUND            exit 1
                                    (the local API has no such job, resource or plugin)
"""

from __future__ import annotations

from dataclasses import dataclass


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
    code = "ZISHU_ERROR"


class UsageError(ZishuError):
    code = "USAGE"


class ManifestError(ZishuError):
    """A manifest (or a set of them) breaks the catalog's rules."""

    code = "MANIFEST_INVALID"

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CardError(ZishuError):
    """A SillyTavern character card could not be read or written."""

    code = "CARD_INVALID"


class CatalogBuildError(ZishuError):
    code = "CATALOG_BUILD_FAILED"


class RemoteError(ZishuError):
    """A remote service (GitHub API, a file host) answered with something unusable."""

    code = "REMOTE_FAILED"


class ResourceNotAvailable(ZishuError):
    """The resource (or that version of it) is not installed; install it first."""

    code = "MODEL_NOT_AVAILABLE"


class DownloadError(RemoteError):
    """A file could not be downloaded from any of its URLs."""

    code = "DOWNLOAD_FAILED"


class ChecksumMismatch(DownloadError):
    """The downloaded bytes are not the ones the manifest promises (nothing was installed)."""

    code = "CHECKSUM_MISMATCH"


class InstallPlanError(ZishuError):
    code = "INSTALL_PLAN_FAILED"


class UnknownResource(InstallPlanError):
    """The catalog has no resource with this id."""

    code = "UNKNOWN_RESOURCE"

    def __init__(self, id: str, catalog: str | None = None):
        self.id = id
        where = f" ({catalog})" if catalog else ""
        words = id.rsplit("/", 1)[-1].replace("-", " ").strip() or id
        super().__init__(
            f"the catalog{where} has no resource {id!r}; find the right id with: zishu search {words}"
        )


class NotEnoughSpace(ZishuError):
    code = "NOT_ENOUGH_SPACE"


class JobCancelled(ZishuError):
    """The user cancelled the job while it ran; what it downloaded so far is kept for a retry."""

    code = "CANCELLED"


class NotFound(ZishuError):
    code = "NOT_FOUND"


class NotEnoughMemory(ZishuError):
    code = "NOT_ENOUGH_MEMORY"


class EngineError(ZishuError):
    code = "ENGINE_FAILED"


EXIT_STATUS = {
    ZishuError.code: 1,
    UsageError.code: 2,
    ManifestError.code: 4,
    CardError.code: 4,
    CatalogBuildError.code: 5,
    RemoteError.code: 6,
    ResourceNotAvailable.code: 3,
    DownloadError.code: 6,
    ChecksumMismatch.code: 6,
    InstallPlanError.code: 7,
    UnknownResource.code: 7,
    NotEnoughSpace.code: 8,
    JobCancelled.code: 9,
    NotEnoughMemory.code: 10,
    EngineError.code: 11,
}


def exit_status(error: ZishuError) -> int:
    return EXIT_STATUS.get(error.code, 1)
