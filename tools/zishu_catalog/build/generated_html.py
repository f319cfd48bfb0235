"""The mkdocs plugin that passes the generated pages through as finished HTML and folds the theme's
indentation out of every page.

It imports mkdocs, so ``site`` imports it only when it runs a build.
"""

from __future__ import annotations

import re
import types

from mkdocs.plugins import BasePlugin
from mkdocs.structure.toc import get_toc


class GeneratedPagesAreHtml(BasePlugin):
    """An mkdocs plugin: generated pages are finished HTML, so skip the Markdown pass for them.

    Python-Markdown's raw-HTML parsing was two thirds of the build time at 10,000 pages; the
    theme still wraps every page exactly as it wraps the hand-written ones.
    """

    def __init__(self, generated_dirs: tuple[str, ...]) -> None:
        self.generated_dirs = generated_dirs  # top-level folders of docs/ that hold generated pages

    def on_pre_page(self, page, config, files):
        if page.file.src_uri.split("/", 1)[0] in self.generated_dirs:
            page.render = types.MethodType(_render_as_html, page)
        return page

    def on_post_page(self, output, page, config):
        return squeeze_whitespace(output)


_KEEP = re.compile(r"(<pre\b.*?</pre>|<textarea\b.*?</textarea>)", re.S | re.I)
_INDENT = re.compile(r"[ \t]*\n\s*")


def squeeze_whitespace(html: str) -> str:
    """Fold each run of whitespace that holds a line break into one line break, outside <pre>.

    The theme's indentation was a third of every page; a browser renders the result the same,
    and scripts keep their line breaks.
    """
    parts = _KEEP.split(html)
    parts[::2] = [_INDENT.sub("\n", p) for p in parts[::2]]
    return "".join(parts)


def _render_as_html(page, config, files) -> None:
    page.content = page.markdown
    page.toc = get_toc([])
    page.present_anchor_ids = set()
