"""What a validation found, and the three ways ``zishu catalog validate`` reports it.

``Outcome`` holds the manifests checked, the problems (``in_file_order``: grouped by file, each
once) and the checksums measured online. ``render_text`` prints one line per problem,
``render_json`` is for scripts, ``render_markdown`` is the pull request comment; text and markdown escape
whatever came from a manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from zishu.errors import Problem

from .catalog import printable
from .online import Measured


@dataclass
class Outcome:
    """What one validation found: the manifests checked, the problems, the measured checksums."""

    checked: list[str]
    problems: list[Problem]
    measured: list[Measured] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def in_file_order(problems: list[Problem]) -> list[Problem]:
    """Problems grouped by file (in path order), each once, in the order found within a file."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: p.file)


def render_text(outcome: Outcome) -> str:
    """One line per problem, ``file: field: message``; or ``N manifests OK``."""
    if outcome.ok:
        return f"{count(len(outcome.checked), 'manifest')} OK"
    return "\n".join(printable(str(p)) for p in outcome.problems)


def render_json(outcome: Outcome) -> str:
    return json.dumps(
        {
            "ok": outcome.ok,
            "checked": len(outcome.checked),
            "problems": [{"file": p.file, "field": p.field, "message": p.message} for p in outcome.problems],
            "measured": [
                {"file": m.manifest.file, "field": m.where, "sha256": m.sha256, "size": m.size}
                for m in outcome.measured
            ],
            "written": outcome.written,
        },
        indent=2,
        ensure_ascii=False,
    )


MAX_REPORT_ROWS = 300


def render_markdown(outcome: Outcome) -> str:
    """A summary for the pull request comment; everything from the manifests is escaped."""
    lines = ["## Catalog validation", ""]
    if outcome.ok:
        lines.append(f"✅ {count(len(outcome.checked), 'manifest')} OK.")
    else:
        files = len({p.file for p in outcome.problems})
        lines += [
            f"❌ {count(len(outcome.problems), 'problem')} in {count(files, 'file')} "
            f"({count(len(outcome.checked), 'manifest')} checked).",
            "",
            "| File | Field | Problem |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {_md_code(p.file)} | {_md_code(p.field)} | {_md_text(p.message)} |"
            for p in outcome.problems[:MAX_REPORT_ROWS]
        ]
        if len(outcome.problems) > MAX_REPORT_ROWS:
            lines += ["", f"…and {len(outcome.problems) - MAX_REPORT_ROWS} more; see the workflow log."]
    if outcome.measured:
        lines += ["", "Measured (files that left out sha256 and size):", ""]
        lines += ["| File | Field | sha256 | Size |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {_md_code(m.manifest.file)} | {_md_code(m.where)} | `{m.sha256}` | {m.size:,} |"
            for m in outcome.measured[:MAX_REPORT_ROWS]
        ]
    return "\n".join(lines) + "\n"


def _md_code(text: str) -> str:
    return f"`{printable(text).replace('`', chr(39)).replace('|', '¦')}`" if text else ""


def _md_text(text: str) -> str:
    text = " ".join(printable(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\\`*_\[\]#|!~])", r"\\\1", text)
    return text.replace("@", "@\u200b")  # no @mentions from manifest content


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}
