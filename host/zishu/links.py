"""``zishu://`` links: what the catalog site's buttons ask the app to show.

    zishu://install/<owner>/<name>[@version]   the resource's page, with its Install button
    zishu://resource/<owner>/<name>            the resource's page
    zishu://package?path=/abs/file.zpkg        Characters, with the package's Install dialog open

Ids follow the one rule in ``zishu.ids`` (dotted names such as ``qwen/qwen2.5-0.5b`` too).
``location`` turns a link into the app path to open; anything else is refused with a message.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

from zishu.errors import UsageError
from zishu.ids import is_id, is_version, split_request


def location(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme != "zishu":
        raise UsageError(f"{url!r} is not a zishu:// link")
    action, path = parts.netloc, parts.path.strip("/")
    if action == "package":
        file = parse_qs(parts.query).get("path", [""])[0]
        if not file.lower().endswith(".zpkg") or not (file.startswith("/") or file[1:3] in (":\\", ":/")):
            raise UsageError(f"{url!r}: expected zishu://package?path=/absolute/path/to/file.zpkg")
        return package_location(file)
    rid, version = split_request(path)
    has_at = "@" in path
    if action not in ("install", "resource") or not is_id(rid) or (has_at and not is_version(version)):
        raise UsageError(f"{url!r}: expected zishu://install/OWNER/NAME or zishu://resource/OWNER/NAME")
    target = f"/resources/{rid}"
    if action == "install":
        target += "?install=" + quote(rid + (f"@{version}" if version else ""), safe="/@")
    return target


def package_location(file: str) -> str:
    """The app path that opens the package ``file`` (an absolute path) in Characters."""
    return "/characters?package=" + quote(file, safe="/")
