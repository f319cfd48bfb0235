"""The studio's prompt filter: per-language word lists, and finding their words in a prompt.

Built-in lists ship in the package (``zishu/studio/filters/<lang>.txt``: English, Chinese,
Japanese); the user's own lists live in ``ZISHU_HOME/filters/<lang>.txt`` and **extend** the
built-in list of the same language: each line adds an entry, and a line ``-entry`` takes a built-in
entry out (for a word that blocks harmless prompts). A user list for a language with no built-in
list (``fr.txt``) adds a language. In every file: one entry a line, ``#`` starts a comment.

Text and entries are NFKC-normalised and case-folded, so full-width ``ＮＵＤＥ`` and half-width
``ｴﾛ`` match ``nude`` and ``エロ``. An entry written in a CJK script (Han, kana, Hangul) matches
anywhere in the prompt, since those scripts put no spaces between words; any other entry matches
whole words only (``sex`` does not match ``Essex``), and may be a phrase (``explicit sex``).

    languages(home)              every language with a built-in or a user list
    word_list(home, lang)        {"lang", "builtin", "user", "entries"}: the two files and what applies
    save_user_list(home, lang, text)   replace the user's list of ``lang`` (checked, written atomically)
    find_words(home, text)       [(lang, entry), ...] the entries found in ``text``
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from zishu.errors import UsageError
from zishu.files import write_atomic

BUILTIN = Path(__file__).resolve().parent / "filters"
USER_FOLDER = "filters"  # under ZISHU_HOME
MAX_USER_LIST = 200_000  # characters in one user list
_LANG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
_CJK = re.compile(r"[\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
                  r"\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")


def normalised(text: str) -> str:
    """``text`` as the filter compares it: NFKC, case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def checked_lang(lang: str) -> str:
    """A language code (``en``, ``zh``, ``pt-br``), or a UsageError naming the field."""
    if not isinstance(lang, str) or not _LANG.match(lang):
        raise UsageError(f"lang: {lang!r} is not a language code (two or three lowercase letters, e.g. en, zh, ja)")
    return lang


def _user_file(home: Path, lang: str) -> Path:
    return Path(home) / USER_FOLDER / f"{checked_lang(lang)}.txt"


def _lines(text: str) -> list[str]:
    """The entries of a list file: comments and blank lines dropped, each entry normalised."""
    found = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            found.append(normalised(" ".join(entry.split())))
    return found


@lru_cache(maxsize=16)
def _builtin(lang: str) -> tuple[str, ...]:
    path = BUILTIN / f"{lang}.txt"
    return tuple(_lines(path.read_text(encoding="utf-8"))) if path.is_file() else ()


def languages(home: Path) -> list[str]:
    """Every language that has a built-in list or a user list, sorted."""
    names = {p.stem for p in BUILTIN.glob("*.txt")}
    user = Path(home) / USER_FOLDER
    if user.is_dir():
        names |= {p.stem for p in user.glob("*.txt") if _LANG.match(p.stem)}
    return sorted(names)


def _user_text(home: Path, lang: str) -> str:
    path = _user_file(home, lang)
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def entries(home: Path, lang: str) -> list[str]:
    """The entries that apply for ``lang``: the built-in ones, less the user's ``-entry`` lines,
    plus the user's own."""
    builtin = list(_builtin(checked_lang(lang)))
    user = _lines(_user_text(home, lang))
    removed = {e[1:].strip() for e in user if e.startswith("-")}
    added = [e for e in user if not e.startswith("-")]
    result: list[str] = []
    for entry in [*builtin, *added]:
        if entry not in removed and entry not in result:
            result.append(entry)
    return result


def word_list(home: Path, lang: str) -> dict:
    """What the app's editor shows for ``lang``: the built-in file, the user's file, and the entries
    that apply."""
    path = BUILTIN / f"{checked_lang(lang)}.txt"
    return {"lang": lang, "builtin": path.read_text(encoding="utf-8") if path.is_file() else "",
            "user": _user_text(home, lang), "entries": entries(home, lang)}


def save_user_list(home: Path, lang: str, text: str) -> dict:
    """Replace the user's list of ``lang`` with ``text`` (empty text removes the file); returns
    ``word_list``. Refuses text that is not a string or is too long, naming the field."""
    if not isinstance(text, str):
        raise UsageError('text: expected the list as a string, one entry a line ({"text": "word\\n# comment"})')
    if len(text) > MAX_USER_LIST:
        raise UsageError(f"text: the list is {len(text)} characters long; at most {MAX_USER_LIST}")
    if "\x00" in text:
        raise UsageError("text: the list contains a NUL character")
    path = _user_file(home, lang)
    if text.strip():
        write_atomic(path, text if text.endswith("\n") else text + "\n")
    else:
        path.unlink(missing_ok=True)
    return word_list(home, lang)


@lru_cache(maxsize=4096)
def _pattern(entry: str) -> tuple[bool, re.Pattern[str]]:
    """(whether the entry is CJK, its pattern)."""
    if _CJK.search(entry):
        return True, re.compile(re.escape(entry))
    words = r"\s+".join(re.escape(w) for w in entry.split())
    return False, re.compile(rf"(?<!\w){words}(?!\w)")


def find_words(home: Path, text: str) -> list[tuple[str, str]]:
    """``(lang, entry)`` for each entry of each language's list found in ``text`` (every language
    is checked: a prompt may mix them)."""
    plain = normalised(text)
    spaced = _CJK.sub(" ", plain)  # Latin words end where CJK text begins ("裸nude" holds "nude")
    found: list[tuple[str, str]] = []
    for lang in languages(home):
        for entry in entries(home, lang):
            cjk, pattern = _pattern(entry)
            if pattern.search(plain if cjk else spaced):
                found.append((lang, entry))
    return found
