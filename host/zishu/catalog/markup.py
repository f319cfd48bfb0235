"""A resource's Markdown description as safe HTML, the same on the catalog site and in the app.

Markdown (fenced code, tables, lists) is converted, then cleaned with nh3 so a manifest can never
put a script, a style or an event handler on a page; links get rel="nofollow noopener".
"""

from __future__ import annotations

import markdown
import nh3

EXTENSIONS = ["fenced_code", "tables", "sane_lists"]


def description_html(text: str | None) -> str:
    if not text:
        return ""
    html = markdown.markdown(text, extensions=EXTENSIONS)  # a new converter per call: thread-safe
    return nh3.clean(html, link_rel="nofollow noopener")
