"""Whether a lorebook keyword appears in the scanned conversation, as SillyTavern matches it.

A key written ``/pattern/flags`` (SillyTavern's ``parseRegexFromString``: no unescaped ``/`` inside,
flags from ``gimsuy``) is a regular expression; its own flags decide case (``i``), and the entry's
``case_sensitive`` does not apply, as in SillyTavern. Any other key is plain text, folded unless
the entry is case sensitive.

A regex comes from a card someone else wrote, so a catastrophic pattern must not hang a turn:

- with the ``regex`` package installed (it comes with the LLM extras), the pattern runs there with
  a ``REGEX_TIMEOUT_S`` time limit; a pattern that runs out of time matches nothing (and is logged);
- without it, Python's ``re`` runs only a safe subset: patterns of at most ``MAX_PATTERN_CHARS``
  characters, with no backreference and no quantified group that itself holds a quantifier or an
  alternation (``(a+)+``, ``(a|aa)*``: the shapes that backtrack exponentially); other patterns
  match nothing (and are logged).

A key that looks like a regex but does not compile is matched as plain text.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

try:  # the third-party engine with a time limit
    import regex as _regex_engine  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the installed extras
    _regex_engine = None

log = logging.getLogger(__name__)

REGEX_TIMEOUT_S = 0.05  # the most one key may take against the scanned text
MAX_PATTERN_CHARS = 200  # the longest pattern run by ``re`` (the fallback without ``regex``)
_DELIMITED = re.compile(r"^/([\w\W]+?)/([gimsuy]*)$")
_UNESCAPED_SLASH = re.compile(r"(^|[^\\])/")
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}  # g, u, y change nothing for a test


def has_time_limit() -> bool:
    """Whether regex keys run with a time limit (the ``regex`` package) or as the safe subset."""
    return _regex_engine is not None


@lru_cache(maxsize=512)
def compiled_key(key: str) -> Any | None:
    """The compiled pattern of a ``/pattern/flags`` key; None for a plain key (or one that does not compile)."""
    match = _DELIMITED.match(key)
    if not match:
        return None
    pattern, flags = match.groups()
    if _UNESCAPED_SLASH.search(pattern):
        return None
    pattern = pattern.replace("\\/", "/")
    bits = 0
    for flag in flags:
        bits |= _FLAGS.get(flag, 0)
    try:
        if _regex_engine is not None:
            return _regex_engine.compile(pattern, bits | _regex_engine.V0)
        return re.compile(pattern, bits)
    except Exception:  # noqa: BLE001 - both engines raise their own error class; a bad key is plain text
        return None


def _is_safe_for_re(pattern: str) -> bool:
    """No backreference, and no quantified group holding a quantifier or an alternation."""
    if len(pattern) > MAX_PATTERN_CHARS or re.search(r"\\[1-9]|\(\?P=", pattern):
        return False
    groups: list[bool] = []  # per open group: does it hold a quantifier or '|'?
    i, risky_closed = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            risky_closed = False
            continue
        if c == "(":
            groups.append(False)
        elif c == ")":
            risky_closed = groups.pop() if groups else False
            if groups and risky_closed:
                groups[-1] = True
            i += 1
            continue
        elif c in "*+?{|":
            if risky_closed and c != "|":
                return False
            if groups and not (c == "?" and i > 0 and pattern[i - 1] == "("):
                groups[-1] = True
        risky_closed = False
        i += 1
    return True


def key_appears(key: str, text: str, folded: str, case_sensitive: bool) -> bool:
    """Whether ``key`` matches ``text`` (``folded``: the same text casefolded)."""
    pattern = compiled_key(key)
    if pattern is None:
        return key in text if case_sensitive else key.casefold() in folded
    if _regex_engine is not None:
        try:
            return pattern.search(text, timeout=REGEX_TIMEOUT_S) is not None
        except TimeoutError:
            log.warning("lorebook key %r took longer than %ss; treated as not matching", key, REGEX_TIMEOUT_S)
            return False
    if not _is_safe_for_re(pattern.pattern):
        log.warning("lorebook key %r is outside the safe regex subset; treated as not matching", key)
        return False
    return pattern.search(text) is not None
