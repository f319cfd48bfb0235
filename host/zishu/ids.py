"""Resource ids, one rule for every caller: ``owner/name`` and the ``owner/name[@version]`` form.

An id is ``owner/name``, lowercase. The owner is a GitHub-login-like slug (letters, digits, inner
dashes); the name may also hold dots, as model names do (``qwen/qwen2.5-0.5b-instruct-gguf``).
The manifest (``ID_PATTERN`` in its JSON Schema), the catalog client, the API routes
(``/api/catalog/resources/<owner>/<name>``), ``zishu://`` links, ``--model`` and the toolchain all
take their pattern and their checks from here, so an id the catalog accepts works everywhere.

    is_id("qwen/qwen2.5-0.5b")                   True
    parse_id("Qwen", "Qwen2.5")                  UsageError (ids are lowercase; callers that fold
                                                 case, like the API routes, lower first)
    split_request("acme/tiny@>=1,<2")            ("acme/tiny", ">=1,<2")   (no checks: a plan does them)
    parse_request("acme/tiny@1.0.0")             Request("acme/tiny", "1.0.0")

A ``version`` in a request is what the user typed after ``@``: an exact version (``1.2.0``) or,
where the caller allows it, a range (``>=1,<2``); ``VERSION_PATTERN`` is the exact kind, as it
appears in a folder name or a ``zishu://`` link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zishu.errors import UsageError

OWNER = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
NAME = r"[a-z0-9](?:[a-z0-9.-]{0,62}[a-z0-9])?"  # dots too, as in model names (qwen2.5-0.5b)
ID_PATTERN = rf"^{OWNER}/{NAME}$"
MAX_ID_LENGTH = 129
VERSION_PATTERN = r"^[0-9A-Za-z.+-]{1,64}$"
RULE = "owner/name: lowercase letters, digits and dashes, and dots in the name"

_ID = re.compile(rf"({OWNER})/({NAME})")
_VERSION = re.compile(r"[0-9A-Za-z.+-]{1,64}")


@dataclass(frozen=True)
class Request:
    """An id and, when the user named one, the version after ``@``."""

    id: str
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.id}@{self.version}" if self.version else self.id


def is_id(text: object) -> bool:
    """Whether ``text`` is a resource id exactly as the manifest allows (no case folding)."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None


def parse_id(text: object, name: str | None = None, *, what: str = "resource id") -> str:
    """``text`` (or ``owner=text, name=name``) as an id; UsageError saying the rule otherwise."""
    rid = f"{text}/{name}" if name is not None else text
    if not is_id(rid):
        raise UsageError(f"{rid!r} is not a {what} ({RULE})")
    return rid  # type: ignore[return-value]


def is_version(text: object) -> bool:
    """Whether ``text`` is an exact version as a folder or a link carries it (not a range)."""
    return isinstance(text, str) and _VERSION.fullmatch(text) is not None


def parse_version(text: object) -> str:
    if not is_version(text):
        raise UsageError(f"{text!r} is not a version (e.g. 1.0.0)")
    return text  # type: ignore[return-value]


def split_request(text: str) -> tuple[str, str]:
    """``owner/name[@wanted]`` → (id lowercased, what follows ``@`` or ''), without checking either."""
    rid, _, wanted = text.strip().partition("@")
    return rid.strip().lower(), wanted.strip()


def parse_request(text: object, *, exact: bool = True) -> Request:
    """A checked ``owner/name[@version]`` (case folded). ``exact``: the version must be one version,
    not a range; with ``exact=False`` anything after ``@`` is left for the install plan to read."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{text!r} is not a resource id ({RULE}), optionally followed by @version")
    rid, wanted = split_request(text)
    parse_id(rid)
    if exact and wanted:
        parse_version(wanted)
    return Request(rid, wanted or None)
